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
// Environment: PORT (default 3000), REDIS_URL (default redis://127.0.0.1:6379), HISTORY_KEEP
// (messages kept per room, default 100000), HOST (default 127.0.0.1).

import { createServer } from "node:http";
import { createHash, randomBytes, scrypt } from "node:crypto";
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
  const joinPath = url.pathname.match(/^\/api\/rooms\/(\d+)\/join$/);
  if (req.method === "POST" && joinPath) {
    const room = Number(joinPath[1]);
    if (!(await redis.exists(`room:${room}`))) return reply(res, 404, { code: "room_not_found" });
    await join(user, room);
    return reply(res, 200, { id: room });
  }
  return reply(res, 404, { code: "not_found" });
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
