// The comparison peer of chat-bench: the chat semantics the benchmark exercises (register, create
// and join rooms, authenticate a socket, broadcast a message to a room, keep the last K messages of
// each room in Redis, page history), on Node.js + Socket.IO 4 + @socket.io/redis-adapter.
//
// Written the way Socket.IO's documentation recommends: the Redis adapter built from a node-redis
// client and its duplicate, authentication in a namespace middleware reading `socket.handshake.auth`,
// rooms joined with `socket.join`, broadcasts with `io.to(room).emit`, replies with acknowledgement
// callbacks, the ws native add-ons (bufferutil, utf-8-validate) installed, and the initial HTTP
// request discarded after the handshake to save memory (the "Performance tuning" page).
//
// Storage: one Lua script per message (INCR the room's seq, LPUSH the event, LTRIM to K), so a
// message costs one Redis round trip, like the Rust server's append script. Run several of these
// processes on one Redis for the two-node scenario; the adapter relays broadcasts between them.
//
// Attachments (the `files` scenario): uploaded over plain HTTP, streamed to a file with Node's own
// `http` and `fs` streams (`stream.pipeline`, so a slow disk pushes back on the socket), recorded in
// Redis, attached by a message sent over REST, downloaded by members of the message's room. Socket.IO
// itself is not for files: its messages are buffered whole (`maxHttpBufferSize`, 1 MB by default),
// so a Socket.IO app uploads files beside it over HTTP, as here.
//
// Environment: PORT (default 3000), REDIS_URL (default redis://127.0.0.1:6379), HISTORY_KEEP
// (messages kept per room, default 100000), HOST (default 127.0.0.1), ATTACH_DIR (where uploads
// go; unset: uploads answer 404), ATTACH_MAX_BYTES (largest upload, default 50 MiB).

import { createServer } from "node:http";
import { createHash, randomBytes, scrypt } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, stat, unlink } from "node:fs/promises";
import { join as joinPath } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient, defineScript } from "redis";

const PORT = Number(process.env.PORT ?? 3000);
const HOST = process.env.HOST ?? "127.0.0.1";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const HISTORY_KEEP = Number(process.env.HISTORY_KEEP ?? 100000);
const MAX_PAGE = 100;
const MAX_BODY = 4096;
const ATTACH_DIR = process.env.ATTACH_DIR ?? "";
const ATTACH_MAX_BYTES = Number(process.env.ATTACH_MAX_BYTES ?? 50 * 1024 * 1024);

const hashPassword = promisify(scrypt);

// KEYS: room seq counter, room log. ARGV: room id, ts, event JSON, keep.
// Returns the stored frame, so the broadcast carries exactly what history will show.
const appendMessage = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `
    local seq = redis.call('INCR', KEYS[1])
    local frame = '{"room":' .. ARGV[1] .. ',"seq":' .. seq .. ',"ts":' .. ARGV[2] .. ',"event":' .. ARGV[3] .. '}'
    redis.call('LPUSH', KEYS[2], frame)
    redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
    return frame`,
  transformArguments(room, ts, event, keep) {
    return [`room:${room}:seq`, `room:${room}:log`, String(room), String(ts), event, String(keep)];
  },
  transformReply(reply) {
    return reply;
  },
});

// KEYS: room seq counter, room log. ARGV: before (0 = newest page), limit.
// The log is newest-first and holds consecutive seqs, so seq `s` sits at index `last - s`.
const historyPage = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `
    local last = tonumber(redis.call('GET', KEYS[1]) or '0')
    local before = tonumber(ARGV[1])
    if before == 0 or before > last + 1 then before = last + 1 end
    local start = last - before + 1
    local events = redis.call('LRANGE', KEYS[2], start, start + tonumber(ARGV[2]) - 1)
    return { last, events }`,
  transformArguments(room, before, limit) {
    return [`room:${room}:seq`, `room:${room}:log`, String(before), String(limit)];
  },
  transformReply(reply) {
    return reply;
  },
});

const redis = createClient({ url: REDIS_URL, scripts: { appendMessage, historyPage } });
const subClient = redis.duplicate();
for (const client of [redis, subClient]) {
  client.on("error", (e) => console.error(`redis: ${e.message}`));
}
await Promise.all([redis.connect(), subClient.connect()]);

const sha256 = (s) => createHash("sha256").update(s).digest("hex");

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 65536) throw new Error("body too large");
    chunks.push(chunk);
  }
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : {};
}

function reply(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

async function userOf(req) {
  const auth = req.headers.authorization ?? "";
  if (!auth.startsWith("Bearer ")) return null;
  const id = await redis.hGet(`sess:${sha256(auth.slice(7))}`, "user");
  return id ? Number(id) : null;
}

async function join(user, room) {
  await redis.multi().sAdd(`user:${user}:rooms`, String(room)).sAdd(`room:${room}:m`, String(user)).exec();
}

// The REST half the benchmark needs for its setup: register, create a room, join a room.
async function handle(req, res) {
  const url = new URL(req.url, "http://x");
  if (req.method === "GET" && url.pathname === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" });
    return res.end("ok");
  }
  if (req.method === "POST" && url.pathname === "/api/register") {
    const { username, password } = await readJson(req);
    if (typeof username !== "string" || typeof password !== "string" || password.length < 8) {
      return reply(res, 400, { code: "bad_request" });
    }
    const salt = randomBytes(16);
    const hash = await hashPassword(password, salt, 32);
    const id = await redis.incr("ids:user");
    if (!(await redis.set(`uname:${username.toLowerCase()}`, String(id), { NX: true }))) {
      return reply(res, 409, { code: "username_taken" });
    }
    const token = randomBytes(32).toString("base64url");
    await redis
      .multi()
      .hSet(`user:${id}`, { name: username, pw: `${salt.toString("hex")}:${hash.toString("hex")}` })
      .hSet(`sess:${sha256(token)}`, { user: String(id), name: username })
      .exec();
    return reply(res, 201, { token, user: { id, username } });
  }
  const user = await userOf(req);
  if (user === null) return reply(res, 401, { code: "unauthorized" });
  if (req.method === "POST" && url.pathname === "/api/rooms") {
    const { name } = await readJson(req);
    if (typeof name !== "string" || name.length === 0) return reply(res, 400, { code: "bad_request" });
    const id = await redis.incr("ids:room");
    await redis.hSet(`room:${id}`, { name });
    await join(user, id);
    return reply(res, 201, { id, name });
  }
  const joinRoute = url.pathname.match(/^\/api\/rooms\/(\d+)\/join$/);
  if (req.method === "POST" && joinRoute) {
    const room = Number(joinRoute[1]);
    if (!(await redis.exists(`room:${room}`))) return reply(res, 404, { code: "room_not_found" });
    await join(user, room);
    return reply(res, 200, { id: room });
  }
  const uploadRoute = url.pathname.match(/^\/api\/rooms\/(\d+)\/attachments$/);
  if (req.method === "POST" && uploadRoute) return upload(req, res, user, Number(uploadRoute[1]), url);
  const messageRoute = url.pathname.match(/^\/api\/rooms\/(\d+)\/messages$/);
  if (req.method === "POST" && messageRoute) return sendMessage(req, res, user, Number(messageRoute[1]));
  const downloadRoute = url.pathname.match(/^\/api\/attachments\/([0-9a-f]{32})$/);
  if (req.method === "GET" && downloadRoute) return download(res, user, downloadRoute[1]);
  return reply(res, 404, { code: "not_found" });
}

const isMember = async (user, room) => Boolean(await redis.sIsMember(`room:${room}:m`, String(user)));

// The body streams into a temporary file (refused past ATTACH_MAX_BYTES, declared or counted), which
// is renamed into place and recorded once complete: a failed upload leaves nothing behind.
async function upload(req, res, user, room, url) {
  const name = url.searchParams.get("name") ?? "";
  if (!ATTACH_DIR) return reply(res, 404, { code: "not_found" });
  if (name.length === 0 || name.length > 255) return reply(res, 400, { code: "bad_request" });
  if (!(await isMember(user, room))) return reply(res, 403, { code: "not_a_member" });
  if (Number(req.headers["content-length"] ?? 0) > ATTACH_MAX_BYTES) {
    return reply(res, 413, { code: "too_large" });
  }
  const id = randomBytes(16).toString("hex");
  const tmp = joinPath(ATTACH_DIR, `.part-${id}`);
  let size = 0;
  const limit = new Transform({
    transform(chunk, _enc, done) {
      size += chunk.length;
      done(size > ATTACH_MAX_BYTES ? new Error("too_large") : null, chunk);
    },
  });
  try {
    await pipeline(req, limit, createWriteStream(tmp));
  } catch (e) {
    await unlink(tmp).catch(() => {});
    return reply(res, e.message === "too_large" ? 413 : 400, { code: e.message === "too_large" ? "too_large" : "bad_request" });
  }
  await rename(tmp, joinPath(ATTACH_DIR, id));
  const att = { id, name, size, content_type: "application/octet-stream" };
  await redis.hSet(`att:${id}`, { owner: String(user), room: String(room), name, size: String(size), attached: "0" });
  return reply(res, 201, att);
}

// A message over REST: `{id, body, attachments: [upload ids]}`; each upload must be the sender's,
// of this room and not yet attached. Stored and broadcast like a socket `send`.
async function sendMessage(req, res, user, room) {
  const { id, body, attachments } = await readJson(req);
  if (typeof id !== "string" || typeof body !== "string" || !Array.isArray(attachments ?? [])) {
    return reply(res, 400, { code: "invalid_message" });
  }
  if (!(await isMember(user, room))) return reply(res, 403, { code: "not_a_member" });
  const files = [];
  for (const att of attachments ?? []) {
    const rec = await redis.hGetAll(`att:${att}`);
    if (rec.owner !== String(user) || rec.room !== String(room) || rec.attached !== "0") {
      return reply(res, 404, { code: "attachment_not_found" });
    }
    files.push({ id: att, name: rec.name, size: Number(rec.size), content_type: "application/octet-stream" });
  }
  for (const f of files) await redis.hSet(`att:${f.id}`, "attached", "1");
  const ts = Date.now();
  const name = await redis.hGet(`user:${user}`, "name");
  const event = JSON.stringify({ kind: "message", id, sender: user, sender_name: name, body, attachments: files });
  const frame = await redis.appendMessage(room, ts, event, HISTORY_KEEP);
  const stored = JSON.parse(frame);
  io.to(`r${room}`).emit("event", stored);
  return reply(res, 200, { room, id, seq: stored.seq, ts, duplicate: false });
}

// Attached: the room's members; pending: its uploader; anyone else gets the answer for a missing id.
async function download(res, user, id) {
  const rec = await redis.hGetAll(`att:${id}`);
  const allowed =
    rec.owner !== undefined && (rec.attached === "1" ? await isMember(user, rec.room) : rec.owner === String(user));
  if (!allowed) return reply(res, 404, { code: "attachment_not_found" });
  const path = joinPath(ATTACH_DIR, id);
  const { size } = await stat(path);
  res.writeHead(200, {
    "content-type": "application/octet-stream",
    "content-length": size,
    "cache-control": "private, max-age=31536000, immutable",
  });
  // Headers are sent: a failure now (the client went away) can only end the response.
  await pipeline(createReadStream(path), res).catch(() => res.destroy());
}

const httpServer = createServer((req, res) => {
  handle(req, res).catch((e) => reply(res, 500, { code: "internal", message: String(e) }));
});

const io = new Server(httpServer, {
  adapter: createAdapter(redis, subClient),
  serveClient: false,
  transports: ["websocket"],
});

// Socket.IO's "Performance tuning" page: the initial HTTP request is kept by default; drop it.
io.engine.on("connection", (rawSocket) => {
  rawSocket.request = null;
});

io.use(async (socket, next) => {
  try {
    const token = socket.handshake.auth?.token;
    if (typeof token !== "string") return next(new Error("unauthorized"));
    const session = await redis.hGetAll(`sess:${sha256(token)}`);
    if (!session.user) return next(new Error("unauthorized"));
    socket.data.user = Number(session.user);
    socket.data.name = session.name;
    next();
  } catch (e) {
    next(new Error("store_unavailable"));
  }
});

io.on("connection", async (socket) => {
  const user = socket.data.user;
  socket.on("send", async (msg, ack) => {
    if (typeof ack !== "function") return;
    const { room, id, body } = msg ?? {};
    if (!socket.rooms.has(`r${room}`)) return ack({ error: "not_a_member", room, id });
    if (typeof id !== "string" || typeof body !== "string" || Buffer.byteLength(body) > MAX_BODY) {
      return ack({ error: "invalid_message", room, id });
    }
    const ts = Date.now();
    const event = JSON.stringify({ kind: "message", id, sender: user, sender_name: socket.data.name, body });
    try {
      const frame = await redis.appendMessage(room, ts, event, HISTORY_KEEP);
      const stored = JSON.parse(frame);
      io.to(`r${room}`).emit("event", stored);
      ack({ room, id, seq: stored.seq, ts, duplicate: false });
    } catch (e) {
      ack({ error: "store_unavailable", room, id });
    }
  });
  socket.on("history", async (q, ack) => {
    if (typeof ack !== "function") return;
    const { room, before, limit } = q ?? {};
    if (!socket.rooms.has(`r${room}`)) return ack({ error: "not_a_member", room });
    const n = Math.min(Math.max(Number(limit) || 50, 1), MAX_PAGE);
    try {
      const [last, frames] = await redis.historyPage(room, Number(before) || 0, n);
      const events = frames.map((f) => JSON.parse(f)).reverse();
      const oldest = events.length ? events[0].seq : 0;
      ack({ room, events, has_more: oldest > 1 && oldest > last - HISTORY_KEEP + 1, last_seq: last });
    } catch (e) {
      ack({ error: "store_unavailable", room });
    }
  });
  const rooms = await redis.sMembers(`user:${user}:rooms`);
  socket.join(rooms.map((r) => `r${r}`));
  // Like the Rust server's `ready`: from here on, the socket receives its rooms' events.
  socket.emit("ready", { rooms: rooms.map(Number) });
});

httpServer.listen(PORT, HOST, () => {
  console.log(`socketio-peer listening on http://${HOST}:${PORT}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    io.close();
    Promise.allSettled([redis.quit(), subClient.quit()]).then(() => process.exit(0));
  });
}
