// DEV ONLY: a fake `window.__TAURI__` so the UI runs in a plain browser for previews and
// screenshots. It answers every command of protocol/src/ipc.rs with made-up data, checks the
// argument names (camelCase, like Tauri), and emits `chat` events.
//
// URL parameters:
//   ?state=fresh | login | main (default main)   which screen the snapshot leads to
//   ?conn=online | connecting | reconnecting | offline   connection shown after start
//   ?room=<id>                                    open this room (the UI does; here only data)
//   ?live=1                                       others type and write now and then
//   ?empty=1                                      a user with no rooms
// Message bodies: "fail" fails once after sending (Retry works); "reject" is refused at once.
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  const scenario = params.get("state") || "main";
  const conn = params.get("conn") || "online";
  const live = params.get("live") === "1";
  const empty = params.get("empty") === "1";

  const now = Date.now();
  const MIN = 60 * 1000;
  const HOUR = 60 * MIN;
  const DAY = 24 * HOUR;

  const users = [
    { id: 1, username: "maya", online: true },
    { id: 2, username: "alice", online: true },
    { id: 3, username: "bob", online: false, last_seen: now - 42 * MIN },
    { id: 4, username: "chen", online: true },
    { id: 5, username: "dario", online: false, last_seen: now - 3 * DAY },
    { id: 6, username: "eve.k", online: true },
    { id: 7, username: "farah", online: false, last_seen: now - 5 * HOUR },
  ];
  const userById = (id) => users.find((u) => u.id === id);
  let me = scenario === "main" ? { id: 1, username: "maya", created_ts: now - 90 * DAY } : null;

  // Rooms: id -> room (protocol::rest::Room without the caller fields) and its messages.
  const rooms = new Map();
  const publicOnly = [];
  function addRoom(r, joined = true) {
    r.messages = [];
    r.read_seq = 0;
    r.role = joined ? r.role || "member" : undefined;
    if (joined) rooms.set(r.id, r);
    else publicOnly.push(r);
    return r;
  }
  let clientCounter = 0;
  const cid = () => "c" + (++clientCounter).toString(36) + Math.random().toString(36).slice(2, 8);
  function say(room, sender, body, ts, extra = {}) {
    const seq = room.messages.length ? room.messages[room.messages.length - 1].seq + 1 : 1;
    const u = userById(sender);
    const m = {
      room: room.id,
      seq,
      client_id: cid(),
      sender,
      sender_name: u.username,
      body,
      ts,
      edited: false,
      deleted: false,
      status: { status: "sent" },
      ...extra,
    };
    room.messages.push(m);
    return m;
  }

  if (!empty) {
    const general = addRoom({ id: 1, name: "general", kind: "group", visibility: "public", member_count: 7, role: "member" });
    const design = addRoom({ id: 2, name: "design-team", kind: "group", visibility: "private", member_count: 4, role: "owner" });
    const random = addRoom({ id: 3, name: "random", kind: "group", visibility: "public", member_count: 6 });
    const dmAlice = addRoom({ id: 4, name: "alice", kind: "direct", visibility: "private", member_count: 2, peer: 2 });
    const dmBob = addRoom({ id: 5, name: "bob", kind: "direct", visibility: "private", member_count: 2, peer: 3 });
    addRoom({ id: 6, name: "rust-lang", kind: "group", visibility: "public", member_count: 23 }, false);
    addRoom({ id: 7, name: "announcements", kind: "group", visibility: "public", member_count: 41 }, false);
    addRoom({ id: 8, name: "book-club", kind: "group", visibility: "public", member_count: 5 }, false);

    // general: older history (for scroll-back), yesterday, today with unread and outbox states.
    const lines = [
      [2, "Morning all!"], [4, "Morning ☕"], [3, "Has anyone looked at the flaky CI job?"],
      [2, "Yes, it's the redis test, it races on startup."], [3, "Ah, makes sense. I'll add a wait."],
      [6, "Can we move standup to 10:15 tomorrow?"], [1, "Works for me."], [4, "Same"],
      [5, "I'll be 5 minutes late, dentist."], [2, "No problem."],
    ];
    let t = now - 4 * DAY;
    for (let i = 0; i < 48; i++) {
      const [s, b] = lines[i % lines.length];
      say(general, s, b + (i >= lines.length ? "" : ""), t);
      t += 37 * MIN;
    }
    t = now - DAY - 3 * HOUR;
    say(general, 2, "Release notes for 0.4 are up in the wiki.", t);
    say(general, 2, "Please read them before Thursday — there's a migration step.", t + MIN);
    say(general, 4, "Thanks! The new search is really fast 🚀", t + 20 * MIN);
    say(general, 1, "I'll do the migration on staging tonight.", t + 45 * MIN);
    t = now - 2 * HOUR;
    say(general, 3, "Staging looks good after the migration.\nOne thing: the old tokens are revoked, so everyone has to log in again.", t);
    say(general, 1, "Good catch, I'll post it in #announcements.", t + 5 * MIN, { edited: true });
    say(general, 6, "(removed)", t + 9 * MIN, { deleted: true, body: "" });
    general.read_seq = general.messages[general.messages.length - 1].seq;
    say(general, 2, "Lunch at 12:30? The new ramen place on 5th opened.", now - 40 * MIN);
    say(general, 4, "I'm in!", now - 38 * MIN);
    say(general, 2, "Great, I'll book a table for 4.\nAnyone else? Reply by noon 🙂", now - 37 * MIN);
    say(general, 6, "Count me in too", now - 12 * MIN);
    // Outbox: one failed, one pending (no seq).
    general.outbox = [
      {
        room: 1, seq: null, client_id: cid(), sender: 1, sender_name: "maya",
        body: "Here's the full log of the failed deploy: (pasted 9 KB of text)", ts: now - 6 * MIN,
        edited: false, deleted: false,
        status: { status: "failed", code: "payload_too_large", reason: "message is larger than the server's limit" },
      },
      {
        room: 1, seq: null, client_id: cid(), sender: 1, sender_name: "maya",
        body: "Sure, see you there!", ts: now - 1 * MIN, edited: false, deleted: false,
        status: { status: "pending" },
      },
    ];

    say(design, 7, "New mockups for the onboarding flow are in Figma.", now - 2 * DAY);
    say(design, 1, "Love the illustrations. Can we try a darker accent?", now - 2 * DAY + 30 * MIN);
    say(design, 7, "Sure, I'll prepare two variants.", now - 5 * HOUR);
    design.read_seq = design.messages.length;

    say(random, 5, "Anyone up for a board game night on Friday?", now - 3 * DAY);
    say(random, 6, "Yes! I can bring Azul.", now - 3 * DAY + 2 * HOUR);
    random.read_seq = 1;

    say(dmAlice, 2, "Hey, do you have a minute to review my PR?", now - 3 * HOUR);
    say(dmAlice, 1, "Sure, send the link.", now - 3 * HOUR + 2 * MIN);
    say(dmAlice, 2, "It's #482, the reconnect backoff one. Thanks!", now - 25 * MIN);
    dmAlice.read_seq = 2;

    say(dmBob, 3, "Thanks for the help yesterday 🙏", now - DAY - HOUR);
    say(dmBob, 1, "Anytime!", now - DAY - 50 * MIN);
    dmBob.read_seq = 2;
  }

  const drafts = new Map([[3, "Friday works, I'll bring snacks"]]);
  let settings = { start_minimized: false, notifications: true };
  let server_url = scenario === "fresh" ? null : "https://chat.example.com";
  let connection = { state: me ? (conn === "online" ? "online" : "connecting") : "offline" };

  // ---------- helpers ----------
  const listeners = [];
  function emit(payload) {
    for (const h of listeners.slice()) h({ event: "chat", id: 1, payload: JSON.parse(JSON.stringify(payload)) });
  }
  const delay = (ms) => new Promise((r) => setTimeout(r, ms));
  function fail(kind, message, server) {
    const code = server ? { kind: "server", server } : { kind };
    return Promise.reject({ code, message });
  }
  function allMessages(room) {
    return room.messages.concat(room.outbox || []);
  }
  function unread(room) {
    return Math.min(100, room.messages.filter((m) => m.seq > room.read_seq && m.sender !== (me && me.id)).length);
  }
  function roomJson(room) {
    const last = room.messages.length ? room.messages[room.messages.length - 1].seq : 0;
    const r = {
      id: room.id, name: room.name, kind: room.kind, visibility: room.visibility,
      member_count: room.member_count, last_seq: last, read_seq: room.read_seq, unread: unread(room),
    };
    if (room.role) r.role = room.role;
    if (room.peer) r.peer = room.peer;
    return r;
  }
  function roomView(room) {
    const all = allMessages(room);
    const last = all.length ? all[all.length - 1] : null;
    return {
      room: roomJson(room),
      last_message: last,
      peer_online: room.kind === "direct" ? !!userById(room.peer).online : null,
    };
  }
  function sortedRooms() {
    const latest = (r) => {
      const all = allMessages(r);
      return all.length ? all[all.length - 1].ts : 0;
    };
    return [...rooms.values()].sort((a, b) => latest(b) - latest(a));
  }
  function need(args, names, cmd) {
    for (const n of names) {
      if (!(n in args)) throw new Error(`mock: command ${cmd} called without argument "${n}" (got ${Object.keys(args).join(", ")})`);
    }
  }
  function getRoom(id) {
    const r = rooms.get(id);
    if (!r) throw { code: { kind: "server", server: "not_a_member" }, message: "not a member of this room" };
    return r;
  }

  // ---------- commands ----------
  const commands = {
    async snapshot() {
      return {
        server_url,
        username: scenario === "fresh" || scenario === "login" ? null : "maya",
        user: me,
        connection,
        limits: { max_message_bytes: 4096, max_frame_bytes: 65536, max_history_page: 100, max_replay: 1000, typing_ttl_ms: 6000 },
      };
    },
    async set_server({ url }) {
      await delay(500);
      if (!/^https?:\/\/[^\s/$.?#].[^\s]*$/i.test(url)) return fail("bad_url", "not a valid http(s) URL");
      if (/down|offline|unreachable/.test(url)) return fail("server_unreachable", "no chat server answered");
      server_url = url;
    },
    async login({ username, password }) {
      await delay(500);
      if (password.length < 8 || password === "wrongpass") {
        return fail("server", "invalid username or password", "invalid_credentials");
      }
      me = { id: 1, username, created_ts: now - 90 * DAY };
      setTimeout(() => goOnline(), 300);
      return me;
    },
    async register({ username, password }) {
      await delay(500);
      if (users.some((u) => u.username.toLowerCase() === username.toLowerCase() && u.id !== 1)) {
        return fail("server", "username already taken", "username_taken");
      }
      if (password.length < 8) return fail("server", "password must be at least 8 characters", "invalid_password");
      me = { id: 1, username, created_ts: now };
      setTimeout(() => goOnline(), 300);
      return me;
    },
    async logout() {
      me = null;
    },
    async unsent() {
      return 0;
    },
    async reconnect_now() {},
    async rooms() {
      return sortedRooms().map(roomView);
    },
    async messages({ room, before, limit }) {
      const r = getRoom(room);
      await delay(before == null ? 80 : 500);
      const n = limit || 50;
      let sent = r.messages.filter((m) => before == null || m.seq < before);
      const has_more = sent.length > n;
      sent = sent.slice(-n);
      const page = before == null ? sent.concat(r.outbox || []) : sent;
      return { messages: page, has_more };
    },
    async send({ room, body }) {
      const r = getRoom(room);
      if (/reject/i.test(body)) return fail("server", "message must not contain control characters", "invalid_message");
      const m = {
        room, seq: null, client_id: cid(), sender: me.id, sender_name: me.username, body,
        ts: Date.now(), edited: false, deleted: false, status: { status: "pending" },
      };
      (r.outbox = r.outbox || []).push(m);
      setTimeout(() => deliver(r, m), /fail/i.test(body) ? 700 : 900);
      return m;
    },
    async retry({ clientId }) {
      for (const r of rooms.values()) {
        const m = (r.outbox || []).find((x) => x.client_id === clientId);
        if (m) {
          m.status = { status: "pending" };
          emit({ type: "message", message: m });
          setTimeout(() => deliver(r, m, true), 900);
          return;
        }
      }
    },
    async discard({ clientId }) {
      for (const r of rooms.values()) r.outbox = (r.outbox || []).filter((x) => x.client_id !== clientId);
      emit({ type: "rooms_changed" });
    },
    async edit({ room, seq, body }) {
      if (/fail/i.test(body)) return fail("server", "slow down", "rate_limited");
      const m = getRoom(room).messages.find((x) => x.seq === seq);
      m.body = body;
      m.edited = true;
      setTimeout(() => emit({ type: "message", message: m }), 150);
    },
    async delete({ room, seq }) {
      const m = getRoom(room).messages.find((x) => x.seq === seq);
      m.body = "";
      m.deleted = true;
      setTimeout(() => emit({ type: "message", message: m }), 150);
    },
    async mark_read({ room, seq }) {
      const r = getRoom(room);
      if (seq > r.read_seq) {
        r.read_seq = seq;
        setTimeout(() => emit({ type: "rooms_changed" }), 50);
      }
    },
    async typing({ room }) {
      getRoom(room);
      console.debug("mock: typing in", room);
    },
    async create_room({ name, visibility }) {
      await delay(300);
      if ([...rooms.values()].some((r) => r.name === name)) {
        // Names need not be unique on the server; this only shows an error in the dialog.
        return fail("server", "room name must be unique in this demo", "invalid_room_name");
      }
      const id = 100 + rooms.size + publicOnly.length;
      const r = addRoom({ id, name, kind: "group", visibility, member_count: 1, role: "owner" });
      emit({ type: "rooms_changed" });
      return roomJson(r);
    },
    async public_rooms() {
      await delay(300);
      const joined = [...rooms.values()].filter((r) => r.kind === "group" && r.visibility === "public");
      return joined.concat(publicOnly).map((r) => {
        const j = roomJson(r);
        if (!rooms.has(r.id)) delete j.role;
        return j;
      });
    },
    async join_room({ room }) {
      await delay(300);
      const i = publicOnly.findIndex((r) => r.id === room);
      if (i < 0) return fail("server", "room not found", "room_not_found");
      const [r] = publicOnly.splice(i, 1);
      r.role = "member";
      r.member_count += 1;
      rooms.set(r.id, r);
      say(r, 4, `Welcome to #${r.name}!`, Date.now() - 5 * MIN);
      r.read_seq = 0;
      emit({ type: "rooms_changed" });
      return roomJson(r);
    },
    async leave_room({ room }) {
      const r = getRoom(room);
      if (r.kind === "direct") return fail("server", "not for direct rooms", "direct_room");
      rooms.delete(room);
      if (r.visibility === "public") publicOnly.push(r);
      emit({ type: "rooms_changed" });
    },
    async members({ room }) {
      const r = getRoom(room);
      await delay(150);
      const ids = r.kind === "direct" ? [1, r.peer] : users.slice(0, Math.min(users.length, r.member_count)).map((u) => u.id);
      return ids.map((id) => {
        const u = userById(id);
        return {
          user: { id, username: u.username, online: !!u.online, last_seen: u.last_seen || null },
          owner: (r.role === "owner" && id === 1) || (r.role !== "owner" && id === 2 && r.kind === "group"),
        };
      });
    },
    async search_users({ query }) {
      await delay(150);
      const q = query.toLowerCase();
      return users
        .filter((u) => u.username.startsWith(q))
        .map((u) => ({ id: u.id, username: u.username, online: !!u.online, last_seen: u.last_seen || null }));
    },
    async open_dm({ user }) {
      await delay(200);
      let r = [...rooms.values()].find((x) => x.kind === "direct" && x.peer === user);
      if (!r) {
        const u = userById(user);
        r = addRoom({ id: 200 + user, name: u.username, kind: "direct", visibility: "private", member_count: 2, peer: user });
        emit({ type: "rooms_changed" });
      }
      return roomJson(r);
    },
    async search({ query }) {
      await delay(120);
      const words = query.toLowerCase().split(/\s+/).filter(Boolean);
      const hits = [];
      for (const r of rooms.values()) {
        for (const m of r.messages) {
          const b = m.body.toLowerCase();
          if (!m.deleted && words.every((w) => b.includes(w))) {
            hits.push({ room: r.id, room_name: r.name, seq: m.seq, sender_name: m.sender_name, body: m.body, ts: m.ts });
          }
        }
      }
      return hits.sort((a, b) => b.ts - a.ts).slice(0, 50);
    },
    async get_draft({ room }) {
      return drafts.get(room) || "";
    },
    async set_draft({ room, text }) {
      if (text) drafts.set(room, text);
      else drafts.delete(room);
    },
    async set_focus({ room }) {
      console.debug("mock: focus", room);
    },
    async get_settings() {
      return { ...settings };
    },
    async set_settings({ settings: s }) {
      settings = { ...s };
    },
  };
  const argNames = {
    set_server: ["url"], register: ["username", "password"], login: ["username", "password"],
    messages: ["room", "before", "limit"], send: ["room", "body"], retry: ["clientId"], discard: ["clientId"],
    edit: ["room", "seq", "body"], delete: ["room", "seq"], mark_read: ["room", "seq"], typing: ["room"],
    create_room: ["name", "visibility"], join_room: ["room"], leave_room: ["room"], members: ["room"],
    search_users: ["query"], open_dm: ["user"], search: ["query"], get_draft: ["room"],
    set_draft: ["room", "text"], set_focus: ["room"], set_settings: ["settings"],
  };

  function deliver(room, m, retried) {
    room.outbox = (room.outbox || []).filter((x) => x !== m);
    if (/fail/i.test(m.body) && !retried) {
      m.status = { status: "failed", code: "rate_limited", reason: "too many messages, slow down" };
      room.outbox.push(m);
      emit({ type: "message", message: m });
      return;
    }
    const seq = room.messages.length ? room.messages[room.messages.length - 1].seq + 1 : 1;
    const sent = { ...m, seq, ts: Date.now(), status: { status: "sent" } };
    room.messages.push(sent);
    room.read_seq = seq;
    emit({ type: "message", message: sent });
    emit({ type: "rooms_changed" });
  }

  function goOnline() {
    connection = { state: "online" };
    emit({ type: "connection", state: connection });
  }

  // Start-up events go out once the UI listens (events before that would be lost).
  let started = false;
  function startScenario() {
    if (started) return;
    started = true;
    // Connection scenarios shown after start.
    setTimeout(() => {
      if (!me) return;
      if (conn === "online") return goOnline();
      if (conn === "connecting") return emit({ type: "connection", state: { state: "connecting" } });
      if (conn === "offline") return emit({ type: "connection", state: { state: "offline" } });
      if (conn === "reconnecting") {
        emit({
          type: "connection",
          state: { state: "reconnecting", attempt: 3, retry_in_ms: 12000, reason: "connection reset by server" },
        });
      }
    }, 200);

    // Something happening: typing, messages, presence.
    setTimeout(() => {
      if (!me || empty) return;
      emit({ type: "typing", room: 1, user: 4, username: "chen", ttl_ms: live ? 6000 : 600000 });
      emit({ type: "typing", room: 1, user: 1, username: "maya", ttl_ms: 6000 }); // own: must be ignored
    }, 400);
  }
  if (live) {
    let n = 0;
    setInterval(() => {
      if (!me || empty) return;
      const general = rooms.get(1);
      const who = [2, 4, 6][n % 3];
      emit({ type: "typing", room: 1, user: who, username: userById(who).username, ttl_ms: 3000 });
      setTimeout(() => {
        const m = say(general, who, `Live message #${++n} at ${new Date().toLocaleTimeString()}`, Date.now());
        emit({ type: "message", message: m });
        emit({ type: "rooms_changed" });
        const u = userById(3);
        u.online = !u.online;
        u.last_seen = u.online ? null : Date.now();
        emit({ type: "presence", user: 3, online: u.online, last_seen: u.last_seen });
      }, 2500);
    }, 8000);
  }

  window.__TAURI__ = {
    core: {
      invoke(cmd, args) {
        args = args || {};
        const f = commands[cmd];
        if (!f) return Promise.reject(`command ${cmd} not found`);
        try {
          need(args, argNames[cmd] || [], cmd);
          return Promise.resolve(f(args)).then((v) => (v === undefined ? null : JSON.parse(JSON.stringify(v))));
        } catch (e) {
          console.error(e);
          return Promise.reject(e && e.code ? e : String(e));
        }
      },
    },
    event: {
      listen(name, handler) {
        if (name !== "chat") return Promise.reject(`mock: unexpected event ${name}`);
        listeners.push(handler);
        startScenario();
        return Promise.resolve(() => {
          const i = listeners.indexOf(handler);
          if (i >= 0) listeners.splice(i, 1);
        });
      },
    },
  };
  // Lets a screenshot script open a room before the first paint: ?room=1
  window.__MOCK__ = { emit, rooms, params };
})();
