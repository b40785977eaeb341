//! The pipe protocol between pidone and its parse workers.
//!
//! Every message is a frame: a 4-byte little-endian length, then that many bytes.
//! - worker -> parent, once at start: [`HELLO`].
//! - parent -> worker: one byte of dialect (`0` sh, `1` bash), then the script (UTF-8).
//! - worker -> parent: the [`ScriptVerdict`] as JSON.

use crate::engine::script::{Dialect, ScriptVerdict};
use std::io::{self, Read, Write};

/// The greeting a worker sends when it is ready; names the protocol version.
pub const HELLO: &[u8] = b"pidone-parse-worker/1";

/// Largest frame either side accepts.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("malformed request: {0}")]
    Request(&'static str),
    #[error("malformed verdict: {0}")]
    Verdict(#[from] serde_json::Error),
}

fn frame(payload_len: usize) -> Result<Vec<u8>, ProtocolError> {
    let len = u32::try_from(payload_len)
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or(ProtocolError::TooLarge(payload_len))?;
    let mut out = Vec::with_capacity(4 + payload_len);
    out.extend_from_slice(&len.to_le_bytes());
    Ok(out)
}

pub fn encode_hello() -> Vec<u8> {
    let mut out = (HELLO.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(HELLO);
    out
}

pub fn encode_request(dialect: Dialect, script: &str) -> Result<Vec<u8>, ProtocolError> {
    let mut out = frame(1 + script.len())?;
    out.push(match dialect {
        Dialect::Sh => 0,
        Dialect::Bash => 1,
    });
    out.extend_from_slice(script.as_bytes());
    Ok(out)
}

pub fn decode_request(payload: Vec<u8>) -> Result<(Dialect, String), ProtocolError> {
    let Some((&d, _)) = payload.split_first() else {
        return Err(ProtocolError::Request("empty"));
    };
    let dialect = match d {
        0 => Dialect::Sh,
        1 => Dialect::Bash,
        _ => return Err(ProtocolError::Request("unknown dialect")),
    };
    let mut script = payload;
    script.remove(0);
    let script = String::from_utf8(script).map_err(|_| ProtocolError::Request("not UTF-8"))?;
    Ok((dialect, script))
}

pub fn encode_verdict(verdict: &ScriptVerdict) -> Result<Vec<u8>, ProtocolError> {
    let json = serde_json::to_vec(verdict)?;
    let mut out = frame(json.len())?;
    out.extend_from_slice(&json);
    Ok(out)
}

pub fn decode_verdict(payload: &[u8]) -> Result<ScriptVerdict, ProtocolError> {
    Ok(serde_json::from_slice(payload)?)
}

/// Reads one frame; `Ok(None)` on a clean end of input before a frame starts.
pub fn read_frame(r: &mut impl Read) -> Result<Option<Vec<u8>>, ProtocolError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ProtocolError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some(payload))
}

pub fn write_all_flush(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    w.write_all(bytes)?;
    w.flush()
}

/// Splits complete frames off a byte buffer filled by non-blocking reads.
#[derive(Debug, Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
}

impl FrameBuf {
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame's payload, if the buffer holds one.
    pub fn take_frame(&mut self) -> Result<Option<Vec<u8>>, ProtocolError> {
        let Some(len) = self.buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > MAX_FRAME {
            return Err(ProtocolError::TooLarge(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let payload = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(Some(payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::script::{Ending, ScriptFacts, UnparsedReason};

    #[test]
    fn request_round_trip() {
        let bytes = encode_request(Dialect::Bash, "exec app \"$@\"").unwrap();
        let mut r = &bytes[..];
        let payload = read_frame(&mut r).unwrap().unwrap();
        assert_eq!(
            decode_request(payload).unwrap(),
            (Dialect::Bash, "exec app \"$@\"".to_string())
        );
        assert!(read_frame(&mut r).unwrap().is_none());
    }

    #[test]
    fn verdict_round_trip_in_pieces() {
        let verdicts = [
            ScriptVerdict::Parsed(ScriptFacts {
                ending: Ending::Foreground {
                    program: "app".into(),
                    insert_at: vec![3, 9],
                    only_command: false,
                },
                background: vec!["agent".into()],
                endless_loop: false,
                signal_trap: true,
                supervisor: None,
                stop_hack: Some("pkill".into()),
                touched: vec!["/tmp/done".into()],
                last: Some(crate::engine::script::FinalCommand {
                    argv: vec!["app".into(), "--port".into()],
                    redirect: true,
                    ..Default::default()
                }),
                traps: vec![crate::engine::script::Trap {
                    action: "exit 0".into(),
                    signals: vec!["TERM".into()],
                }],
                commands: vec![vec!["app".into(), "--port".into(), "80".into()]],
            }),
            ScriptVerdict::Unparsed(UnparsedReason::Syntax {
                message: "x".into(),
                line: Some(1),
                column: None,
            }),
        ];
        let mut fb = FrameBuf::default();
        for v in &verdicts {
            let bytes = encode_verdict(v).unwrap();
            let (a, b) = bytes.split_at(3);
            fb.extend(a);
            assert!(fb.take_frame().unwrap().is_none());
            fb.extend(b);
            let payload = fb.take_frame().unwrap().unwrap();
            assert_eq!(&decode_verdict(&payload).unwrap(), v);
        }
    }

    #[test]
    fn malformed_requests_are_errors() {
        assert!(decode_request(vec![]).is_err());
        assert!(decode_request(vec![7, b'a']).is_err());
        assert!(decode_request(vec![0, 0xff]).is_err());
        let mut huge = &(u32::MAX.to_le_bytes())[..];
        assert!(read_frame(&mut huge).is_err());
    }
}
