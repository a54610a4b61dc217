//! The host's edge cases in one guest; `input.case` picks one.
//!
//! Each case is something a real plugin could do by mistake or by malice. The
//! host's tests (tests/all/sandbox_*.rs) assert how each one ends.

use sandbot_sdk::{Action, ActionError, Value, budget, conversation, http, json, session};

struct EdgeCases;

impl Action for EdgeCases {
    fn run(input: Value) -> Result<Value, ActionError> {
        let case = input["case"].as_str().unwrap_or("noop");
        let n = input["n"].as_u64().unwrap_or(0);
        match case {
            // Nothing at all: the floor of an invocation's cost.
            "noop" => Ok(Value::Null),
            "echo" => Ok(input),
            // Reads, writes and messages, all buffered by the host.
            "session" => {
                let count: i64 = session::get("counter")?.unwrap_or(0);
                session::set("counter", &(count + 1))?;
                session::set("user.address.city", "Ghent")?;
                session::set("items[0]", "a")?;
                session::set("items[1]", &json!({"sku": "b"}))?;
                session::remove("obsolete")?;
                let seen = session::get_value("user.address.city");
                conversation::say_text(&format!("counter was {count}"))?;
                conversation::goto("first");
                conversation::goto(input["next"].as_str().unwrap_or("done"));
                conversation::info("session case done");
                Ok(json!({ "seen": seen }))
            }
            "write_internal" => {
                session::set("internal.botId", "stolen")?;
                Ok(Value::Null)
            }
            "bad_message" => {
                sandbot_sdk::bindings::sandbot::action::conversation::say("[1,2]")
                    .map_err(|e| ActionError::new("invalid_message", e))?;
                Ok(Value::Null)
            }
            // Changes made, then a failure: none of them may apply.
            "set_then_fail" => {
                session::set("user.flag", &true)?;
                conversation::say_text("should never be delivered")?;
                conversation::goto("never");
                Err(ActionError::new("on_purpose", "failing after writes"))
            }
            "set_then_trap" => {
                session::set("user.flag", &true)?;
                conversation::say_text("should never be delivered")?;
                panic!("trapping after writes");
            }
            // Limits.
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "work" => {
                // Bounded busy work: `n` iterations.
                let mut x: u64 = 0;
                for i in 0..n {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                }
                Ok(json!(x))
            }
            "alloc" => {
                // Grows by 1 MiB chunks; with n = 0, forever.
                let mut chunks: Vec<Vec<u8>> = Vec::new();
                while n == 0 || (chunks.len() as u64) < n {
                    chunks.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
                Ok(json!(chunks.len()))
            }
            "recurse" => Ok(json!(recurse(std::hint::black_box(n.max(u64::MAX / 2))))),
            "recurse_n" => Ok(json!(recurse(n))),
            "huge_output" => Ok(Value::String("x".repeat(n as usize))),
            "huge_say" => {
                let text = "y".repeat(1 << 16);
                for _ in 0..n {
                    conversation::say_text(&text)?;
                }
                Ok(Value::Null)
            }
            "log_many" => {
                for i in 0..n {
                    conversation::info(&format!("line {i}"));
                }
                Ok(Value::Null)
            }
            "budget" => {
                let b = budget::remaining();
                Ok(
                    json!({"fuel": b.fuel, "wall_ms": b.wall_ms, "http_calls": b.http_calls, "memory_bytes": b.memory_bytes}),
                )
            }
            // Egress: the host decides; `?` turns a denial into the guest's error.
            "fetch" => {
                let url = input["url"].as_str().unwrap_or("https://example.com/");
                let mut req = http::Request::new(input["method"].as_str().unwrap_or("GET"), url);
                if let Some(body) = input["body"].as_str() {
                    req = req.body(body.as_bytes().to_vec());
                }
                let res = req.send()?;
                Ok(json!({"status": res.status(), "body": res.text(), "url": res.url()}))
            }
            "fetch_result" => {
                // Reports the outcome instead of failing: the guest handles denials.
                let url = input["url"].as_str().unwrap_or("https://example.com/");
                match http::get(url) {
                    Ok(res) => Ok(json!({"status": res.status()})),
                    Err(e) => Ok(json!({"error": http::describe(&e)})),
                }
            }
            "fetch_loop" => {
                let url = input["url"].as_str().unwrap_or("https://example.com/");
                let mut done = 0;
                loop {
                    let _ = http::get(url);
                    done += 1;
                    if n > 0 && done >= n {
                        return Ok(json!(done));
                    }
                }
            }
            // WASI beyond clocks and randomness: no files, no environment.
            "wasi_world" => {
                let read = std::fs::read_to_string("/etc/passwd").is_err();
                let list = std::fs::read_dir("/").is_err() && std::fs::read_dir(".").is_err();
                let write = std::fs::write("/tmp/sandbot-guest", "x").is_err();
                let vars = std::env::vars().count();
                let args = std::env::args().count();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .is_ok_and(|d| d.as_secs() > 1_600_000_000);
                Ok(json!({
                    "readDenied": read,
                    "listDenied": list,
                    "writeDenied": write,
                    "envVars": vars,
                    "args": args,
                    "clock": now,
                }))
            }
            other => Err(ActionError::new(
                "unknown_case",
                format!("no case `{other}`"),
            )),
        }
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    let mut pad = [0u8; 64];
    pad[(depth % 64) as usize] = 1;
    std::hint::black_box(&pad);
    1 + recurse(std::hint::black_box(depth - 1))
}

sandbot_sdk::export_action!(EdgeCases);
