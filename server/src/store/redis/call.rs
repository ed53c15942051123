//! A script call written straight into one command buffer, for the hot path (the append).
//!
//! redis-rs's `ScriptInvocation` gives every key and argument its own `Vec<u8>` and copies
//! them into an `EVALSHA` command when it is sent: for an append (nine keys, ten arguments)
//! about twenty allocations per message. [`ScriptCall`] writes `EVALSHA <sha> <numkeys>`, then
//! each key and argument, into one `Cmd` sized up front. The command is the same bytes, so a
//! cluster connection routes it by its first key as before; like `ScriptInvocation`, a call
//! that Redis answers with `NOSCRIPT` (a restarted or flushed Redis) loads the script and is
//! sent once more.

use super::conn::Conn;
use redis::aio::ConnectionLike;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, RedisResult, Script, ToRedisArgs, Value};
use std::future::Future;

/// One `EVALSHA` of a script: its keys first, then its arguments.
pub(super) struct ScriptCall<'a> {
    script: &'a Script,
    cmd: Cmd,
    /// The key count written after the script's hash.
    keys: usize,
    /// Keys written so far; an argument before all of them is a mistake ([`ScriptCall::invoke`]
    /// refuses to send the call).
    written: usize,
    /// An argument came before the last key.
    misordered: bool,
}

impl<'a> ScriptCall<'a> {
    /// A call of `script` that declares exactly `keys` keys; `bytes` is about what the keys and
    /// arguments take (a guess: the buffer grows past it if need be).
    pub fn new(script: &'a Script, keys: usize, bytes: usize) -> Self {
        let mut cmd = Cmd::with_capacity(3 + keys + 16, 64 + bytes);
        cmd.arg("EVALSHA").arg(script.get_hash()).arg(keys);
        Self {
            script,
            cmd,
            keys,
            written: 0,
            misordered: false,
        }
    }

    /// Adds a key (or several: [`super::keys::RoomKeys`] is six).
    pub fn key(&mut self, key: impl ToRedisArgs) -> &mut Self {
        self.written += key.num_of_args();
        self.cmd.arg(key);
        self
    }

    /// Adds an argument; all keys come first.
    pub fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        self.misordered |= self.written != self.keys;
        self.cmd.arg(arg);
        self
    }

    /// Sends the call (and loads the script first if Redis does not know it).
    pub async fn invoke<T: FromRedisValue>(&self, con: &mut impl Send1) -> RedisResult<T> {
        if self.misordered || self.written != self.keys {
            return Err(RedisError::from((
                ErrorKind::Client,
                "script call: keys and arguments do not match the declared key count",
            )));
        }
        let reply = match con.send1(&self.cmd).await.and_then(Value::extract_error) {
            Err(e) if e.kind() == ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.script.load_async(con).await?;
                con.send1(&self.cmd).await?.extract_error()?
            }
            reply => reply?,
        };
        Ok(redis::from_redis_value(reply)?)
    }
}

/// A connection a [`ScriptCall`] is sent on: one command, one reply.
pub(super) trait Send1: ConnectionLike + Send {
    fn send1<'a>(
        &'a mut self,
        cmd: &'a Cmd,
    ) -> impl Future<Output = RedisResult<Value>> + Send + 'a;
}

/// On one Redis the connection manager's own future, awaited in place: `ConnectionLike` boxes
/// it (one allocation per append, and a call through a pointer). A cluster connection routes
/// the command by its first key, as before.
impl Send1 for Conn {
    async fn send1(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(con) => con.send_packed_command(cmd).await,
            Conn::Cluster(con) => con.req_packed_command(cmd).await,
        }
    }
}

/// The words of a script's reply (`ok 12 1700000000000`), as `reply.split(' ')` gives them,
/// found byte by byte (`split` searches for each space with memchr, costly on a short string).
pub(super) fn words(reply: &str) -> impl Iterator<Item = &str> {
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        let rest = reply.get(from..)?;
        match rest.bytes().position(|b| b == b' ') {
            Some(i) => {
                start = Some(from + i + 1);
                rest.get(..i)
            }
            None => {
                start = None;
                Some(rest)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    /// A connection that records what is sent and answers as a Redis that does not know the
    /// script until it is loaded.
    #[derive(Default)]
    struct Fake {
        sent: Vec<String>,
        /// The hash `SCRIPT LOAD` answers.
        hash: String,
        loaded: bool,
    }

    impl Send1 for Fake {
        async fn send1(&mut self, cmd: &Cmd) -> RedisResult<Value> {
            self.req_packed_command(cmd).await
        }
    }

    impl redis::aio::ConnectionLike for Fake {
        fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, Value> {
            let packed = String::from_utf8_lossy(&cmd.get_packed_command()).into_owned();
            let reply = if packed.contains("SCRIPT") {
                self.loaded = true;
                format!("${}\r\n{}\r\n", self.hash.len(), self.hash)
            } else if self.loaded {
                "+ok 1 2\r\n".to_owned()
            } else {
                "-NOSCRIPT No matching script\r\n".to_owned()
            };
            self.sent.push(packed);
            Box::pin(async move { redis::parse_redis_value(reply.as_bytes()) })
        }

        fn req_packed_commands<'a>(
            &'a mut self,
            _: &'a redis::Pipeline,
            _: usize,
            _: usize,
        ) -> redis::RedisFuture<'a, Vec<Value>> {
            Box::pin(async { Ok(Vec::new()) })
        }

        fn get_db(&self) -> i64 {
            0
        }
    }

    /// The command is the bytes a `ScriptInvocation` sends (`EVALSHA`, the hash, the key count,
    /// keys, arguments): a cluster routes it the same way, the script reads the same `KEYS`
    /// and `ARGV`. Unknown to Redis, the script is loaded and the call sent again.
    #[tokio::test]
    async fn sends_evalsha_and_loads_the_script_when_redis_lacks_it() {
        let script = Script::new("return 1");
        let mut call = ScriptCall::new(&script, 3, 0);
        call.key("a").key(&["b", "c"]).arg(7u64).arg("").arg("x y");
        let mut con = Fake {
            hash: script.get_hash().to_owned(),
            ..Fake::default()
        };
        let reply: String = call.invoke(&mut con).await.expect("reply");
        assert_eq!(reply, "ok 1 2");
        let expected = redis::cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(3)
            .arg(&["a", "b", "c"])
            .arg(7u64)
            .arg("")
            .arg("x y")
            .get_packed_command();
        let expected = String::from_utf8_lossy(&expected).into_owned();
        assert_eq!(con.sent.len(), 3);
        assert_eq!(con.sent[0], expected);
        assert!(con.sent[1].contains("LOAD") && con.sent[1].contains("return 1"));
        assert_eq!(con.sent[2], expected);
        // Known now: one command.
        let _: String = call.invoke(&mut con).await.expect("reply");
        assert_eq!(con.sent.len(), 4);
    }

    #[test]
    fn words_are_split_as_str_split_does() {
        for reply in [
            "ok 12 1700000000000",
            "",
            " ",
            "ok",
            "a  b ",
            " x",
            "dup 1 2 3",
            "é é",
        ] {
            let ours: Vec<&str> = words(reply).collect();
            let split: Vec<&str> = reply.split(' ').collect();
            assert_eq!(ours, split, "{reply:?}");
        }
    }

    #[tokio::test]
    async fn a_call_that_miscounts_its_keys_is_not_sent() {
        let script = Script::new("return 1");
        let mut con = Fake::default();
        let mut early = ScriptCall::new(&script, 2, 0);
        early.key("a").arg(1).key("b");
        let mut short = ScriptCall::new(&script, 2, 0);
        short.key("a").arg(1);
        let mut long = ScriptCall::new(&script, 1, 0);
        long.key(&["a", "b"]).arg(1);
        for call in [early, short, long] {
            let err = call.invoke::<String>(&mut con).await.expect_err("refused");
            assert_eq!(err.kind(), ErrorKind::Client);
        }
        assert!(con.sent.is_empty());
    }
}
