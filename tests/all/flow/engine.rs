//! The flow engine's block behaviours, with a fake action runner.

use serde_json::{Value, json};

use sandbot::flow::{ActionCall, ActionEffects, ActionFailure};

use crate::flow::support::*;

fn intro(then: &str) -> String {
    format!(
        "  - {{ id: intro, system: introduction, type: message, messages: [{{ text: \"Hi\" }}], goto: {then} }}\n"
    )
}

#[tokio::test]
async fn message_variants_languages_templates_and_rich_messages() {
    let dir = write_bot(
        "languages: [en, nl]\n",
        r#"
  - id: intro
    system: introduction
    type: message
    messages:
      - text: { en: ["Hello {user.name|capitalize}", "Hey {user.name|capitalize}"], nl: "Hallo {user.name|toUpperCase}" }
      - text: Pick
        buttons:
          - { title: Go, goto: next }
          - { title: Site, url: "https://example.com/{user.name}" }
          - { title: Call, phone: "+3212345678" }
      - text: Quick
        quickReplies: [{ title: { en: Yes, nl: Ja }, goto: next, set: { answer: yes } }]
      - carousel: [{ title: Card, subtitle: Sub, imageUrl: "https://example.com/a.png", url: "https://example.com", buttons: [{ title: Open, goto: next }] }]
      - media: { type: video, url: "https://example.com/v.mp4" }
  - { id: next, type: message, messages: [{ text: "answer={answer} visits={n|increment}" }] }
"#,
        &[],
    );
    let bot = load(&dir);
    let runner = FakeRunner::ok();
    let events = talk(&bot, runner.clone(), "/intro").await;
    let texts = said(&events);
    assert!(texts[0] == "Hello " || texts[0] == "Hey ", "{texts:?}"); // user.name missing → empty
    let messages: Vec<&Value> = events.iter().filter_map(|e| e.get("bot")).collect();
    assert_eq!(messages[1]["type"], "buttons");
    assert_eq!(
        messages[1]["config"]["buttons"][1],
        json!({"type": "web_url", "title": "Site", "url": "https://example.com/"})
    );
    assert_eq!(
        messages[1]["config"]["buttons"][2],
        json!({"type": "phone_number", "title": "Call", "payload": "+3212345678"})
    );
    let payload = messages[1]["config"]["buttons"][0]["payload"]
        .as_str()
        .unwrap();
    assert!(
        payload.starts_with("pb_") && payload.len() == 23,
        "{payload}"
    );
    assert_eq!(messages[2]["type"], "quickReplies");
    assert_eq!(messages[3]["config"]["elements"][0]["subTitle"], "Sub");
    assert_eq!(
        messages[3]["config"]["elements"][0]["webUrl"],
        "https://example.com"
    );
    assert_eq!(
        messages[4]["config"]["media"],
        json!({"type": "video", "url": "https://example.com/v.mp4"})
    );

    // The quick reply's params are set; Dutch picks the nl text.
    let (events, session) = talk_session(&bot, runner.clone(), "/intro\n/postback Yes").await;
    assert_eq!(said(&events).last().unwrap(), "answer=yes visits=1");
    assert_eq!(session["answer"], "yes");
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path(), runner);
    let mut conv = sandbot::flow::turn::script::Conversation::new(&engine, &bot, "nl-user");
    conv.language = Some("nl".into());
    let events = conv.run_script("/intro\n/postback Ja").await.unwrap();
    assert_eq!(said(&events)[0], "Hallo ");
    assert_eq!(said(&events).last().unwrap(), "answer=yes visits=1");
    // An unknown language falls back to the primary one.
    conv.language = Some("fr".into());
    let events = conv.run_script("/intro").await.unwrap();
    assert!(said(&events)[0].starts_with('H') && !said(&events)[0].starts_with("Hallo"));
}

/// `nl-BE` (or `nl_BE`) speaks the bot's `nl`; a later message whose user
/// has no first name keeps the one known (it used to erase it).
#[tokio::test]
async fn regional_languages_fall_back_and_a_missing_first_name_is_kept() {
    use sandbot::flow::{Inbound, InboundKind, UserInfo};
    let dir = write_bot(
        "languages: [en, nl]\n",
        r#"
  - id: intro
    system: introduction
    type: message
    messages: [{ text: { en: "Hello {internal.user.firstName}", nl: "Hallo {internal.user.firstName}" } }]
"#,
        &[],
    );
    let bot = load(&dir);
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path(), FakeRunner::ok());
    let turn = |conversation: &str, user: UserInfo| {
        let mut inbound = Inbound::new(conversation, "webHook", InboundKind::Intro);
        inbound.user = Some(user);
        inbound
    };
    for (conversation, language, greeting) in [
        ("a", "nl-BE", "Hallo Ada"),
        ("b", "NL_be", "Hallo Ada"),
        ("c", "en-GB", "Hello Ada"),
        ("d", "fr-BE", "Hello Ada"),
    ] {
        let user = UserInfo {
            first_name: Some("Ada".into()),
            preferred_language: Some(language.into()),
            ..UserInfo::default()
        };
        let out = engine.turn(&bot, turn(conversation, user)).await.unwrap();
        assert_eq!(said(&out.events), [greeting], "{language}");
    }
    let later = UserInfo {
        last_name: Some("Lovelace".into()),
        ..UserInfo::default()
    };
    let out = engine.turn(&bot, turn("a", later)).await.unwrap();
    assert_eq!(said(&out.events), ["Hallo Ada"]);
    assert_eq!(
        out.session["internal"]["user"],
        json!({"firstName": "Ada", "lastName": "Lovelace", "fullName": "Ada Lovelace"})
    );
}

#[tokio::test]
async fn condition_rules_and_or_first_match_and_else() {
    let dir = write_bot(
        "",
        &(intro("{ block: cond, set: { age: 20, country: BE } }")
            + r#"
  - id: cond
    type: condition
    rules:
      - { match: all, conditions: [{ variable: age, operator: greaterThan, value: 18 }, { variable: country, operator: equals, value: NL }], goto: adult-nl }
      - { match: any, conditions: [{ variable: country, operator: equals, value: be, caseSensitive: false }, { variable: nope, operator: exists }], goto: be }
      - { conditions: [{ variable: age, operator: exists }], goto: never }
    else: other
  - { id: adult-nl, type: message, messages: [{ text: NL }] }
  - { id: be, type: message, messages: [{ text: BE }] }
  - { id: never, type: message, messages: [{ text: NEVER }] }
  - { id: other, type: message, messages: [{ text: OTHER }] }
"#),
        &[],
    );
    let events = talk(&load(&dir), FakeRunner::ok(), "/intro").await;
    assert_eq!(said(&events), ["Hi", "BE"]);
    assert_eq!(blocks(&events), ["intro", "cond", "be"]);
}

#[tokio::test]
async fn collect_input_skip_retry_redirect_and_intents() {
    let dir = write_bot(
        r#"nlp:
  intents:
    - { name: help, goto: help, expressions: { en: [i need help, help me please] } }
"#,
        &(intro("ask")
            + r#"
  - { id: ask, type: input, variable: user.age, inputType: number, question: "Age?", retry: "A number!", maxAttempts: 2, onFail: human, goto: done }
  - { id: done, type: message, messages: [{ text: "Age {user.age}" }] }
  - { id: human, type: message, messages: [{ text: HUMAN }] }
  - { id: help, type: message, messages: [{ text: HELP }] }
  - { id: strict, type: input, variable: code, question: "Code?", nlp: false, goto: done }
"#),
        &[],
    );
    let bot = load(&dir);
    let r = FakeRunner::ok();
    let (events, session) = talk_session(&bot, r.clone(), "/intro\nforty\n41").await;
    assert_eq!(said(&events), ["Hi", "Age?", "A number!", "Age 41"]);
    assert_eq!(session["user"]["age"], 41);
    // After maxAttempts invalid answers: onFail.
    assert_eq!(
        said(&talk(&bot, r.clone(), "/intro\nx\ny").await),
        ["Hi", "Age?", "A number!", "HUMAN"]
    );
    // A recognised intent leaves the input.
    assert_eq!(
        said(&talk(&bot, r.clone(), "/intro\nhelp me plz").await),
        ["Hi", "Age?", "HELP"]
    );
    // Already set: the block is skipped.
    let dir2 = write_bot(
        "",
        &(intro("{ block: ask, set: { user.age: 30 } }")
            + "  - { id: ask, type: input, variable: user.age, inputType: number, question: \"Age?\", goto: done }\n  - { id: done, type: message, messages: [{ text: \"Age {user.age}\" }] }\n"),
        &[],
    );
    assert_eq!(
        said(&talk(&load(&dir2), r.clone(), "/intro").await),
        ["Hi", "Age 30"]
    );
    // nlp: false keeps the input even when an intent matches.
    let dir3 = write_bot(
        "nlp:\n  intents: [{ name: help, goto: help, expressions: { en: [i need help] } }]\n",
        &(intro("ask")
            + "  - { id: ask, type: input, variable: code, question: \"Code?\", nlp: false, goto: done }\n  - { id: done, type: message, messages: [{ text: \"Code {code}\" }] }\n  - { id: help, type: message, messages: [{ text: HELP }] }\n"),
        &[],
    );
    assert_eq!(
        said(&talk(&load(&dir3), r, "/intro\ni need help").await),
        ["Hi", "Code?", "Code i need help"]
    );
}

#[tokio::test]
async fn every_input_type_accepts_and_refuses() {
    let cases = [
        (
            "email",
            "",
            "nope",
            "ada@example.com",
            json!("ada@example.com"),
        ),
        (
            "phone",
            "",
            "12",
            "+32 470 12 34 56",
            json!("+32 470 12 34 56"),
        ),
        (
            "url",
            "",
            "not a url",
            "https://example.com",
            json!("https://example.com"),
        ),
        ("date", "", "31/02/2026", "28/02/2026", json!("2026-02-28")),
        (
            "choice",
            "options: [Red, Blue], ",
            "green",
            "blue",
            json!("Blue"),
        ),
        (
            "regex",
            "pattern: 'ORD-\\d{4}', ",
            "ORD-12",
            "ORD-1234",
            json!("ORD-1234"),
        ),
        ("any", "", "", "anything", json!("anything")),
        ("number", "", "ten", "10.5", json!(10.5)),
    ];
    for (kind, extra, bad, good, stored) in cases {
        let blocks = intro("ask")
            + &format!(
                "  - {{ id: ask, type: input, variable: v, inputType: {kind}, {extra}question: Q, retry: R, goto: done }}\n  - {{ id: done, type: message, messages: [{{ text: \"ok\" }}] }}\n"
            );
        let dir = write_bot("", &blocks, &[]);
        let bot = load(&dir);
        let script = if bad.is_empty() {
            format!("/intro\n{good}")
        } else {
            format!("/intro\n{bad}\n{good}")
        };
        let (events, session) = talk_session(&bot, FakeRunner::ok(), &script).await;
        let want: Vec<&str> = if bad.is_empty() {
            vec!["Hi", "Q", "ok"]
        } else {
            vec!["Hi", "Q", "R", "ok"]
        };
        assert_eq!(said(&events), want, "{kind}");
        assert_eq!(session["v"], stored, "{kind}");
    }
}

#[tokio::test]
async fn actions_code_api_plugin_set_clear_and_goto_variable() {
    let dir = write_bot(
        "",
        &(intro("{ block: code, set: { keep: 1, target: last } }")
            + r#"
  - { id: code, type: action, code: a.js, args: { n: "{keep}", text: "n={keep}", next: after-code }, goto: api }
  - { id: after-code, type: action, api: { method: GET, url: "https://api.example.com" }, goto: plugin }
  - { id: api, type: message, messages: [{ text: "not reached" }] }
  - { id: plugin, type: action, plugin: p.wasm, input: { who: "{from.code}" }, goto: clear }
  - { id: clear, type: action, clearSession: true, goto: { block: jump, set: { target: last } } }
  - { id: jump, type: action, gotoVariable: target }
  - { id: last, type: message, messages: [{ text: "keep={keep} from={from.code}" }] }
"#),
        &[("a.js", "return 1;")],
    );
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::write(dir.path().join("plugins/p.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let bot = load(&dir);
    let runner = FakeRunner::new(|call, session| match call {
        ActionCall::Code { args, .. } => Ok(ActionEffects {
            session: [("from.code".to_string(), json!("js"))]
                .into_iter()
                .collect(),
            messages: vec![
                json!({"type": "text", "config": {"textMessages": [{"text": format!("code saw {}", session["keep"])}]}}),
            ],
            next: args["next"].as_str().map(str::to_string),
        }),
        _ => Ok(ActionEffects::default()),
    });
    let (events, session) = talk_session(&bot, runner.clone(), "/intro").await;
    assert_eq!(
        blocks(&events),
        [
            "intro",
            "code",
            "after-code",
            "plugin",
            "clear",
            "jump",
            "last"
        ]
    );
    assert_eq!(said(&events), ["Hi", "code saw 1", "keep= from="]);
    let calls = runner.calls.lock().unwrap().clone();
    assert_eq!(
        calls[0],
        (
            "a.js".to_string(),
            json!({"n": 1, "text": "n=1", "next": "after-code"})
        )
    );
    assert_eq!(calls[1].1["url"], "https://api.example.com");
    assert_eq!(calls[2], ("p.wasm".to_string(), json!({"who": "js"})));
    assert!(session.get("keep").is_none());
    assert_eq!(session["internal"]["botId"], "test");
}

#[tokio::test]
async fn a_failed_action_applies_nothing_and_goes_to_error_occurred() {
    let dir = write_bot(
        "",
        &(intro("{ block: act, set: { before: 1 } }")
            + "  - { id: act, type: action, code: a.js, goto: after }\n  - { id: after, type: message, messages: [{ text: AFTER }] }\n"),
        &[("a.js", "throw new Error('x')")],
    );
    let runner = FakeRunner::new(|_, _| {
        Err(ActionFailure {
            kind: "js_error".into(),
            message: "Error: x (action.js line 1, column 7)".into(),
        })
    });
    let (events, session) = talk_session(&load(&dir), runner, "/intro").await;
    assert_eq!(said(&events), ["Hi", "ERR"]);
    assert_eq!(errors(&events), ["js_error"]);
    assert_eq!(session["before"], 1);
    // A write to internal.* from an action is refused the same way.
    let runner = FakeRunner::new(|_, _| {
        Ok(ActionEffects {
            session: [("internal.botId".to_string(), json!("x"))]
                .into_iter()
                .collect(),
            ..Default::default()
        })
    });
    let (events, session) = talk_session(&load(&dir), runner, "/intro").await;
    assert_eq!(errors(&events), ["invalid_session_write"]);
    assert_eq!(session["internal"]["botId"], "test");
    // An action naming a block the bot lacks.
    let runner = FakeRunner::new(|_, _| {
        Ok(ActionEffects {
            next: Some("nowhere".into()),
            ..Default::default()
        })
    });
    assert_eq!(
        errors(&talk(&load(&dir), runner, "/intro").await),
        ["unknown_block"]
    );
}

#[tokio::test]
async fn a_session_past_10_mb_is_refused() {
    let dir = write_bot(
        "",
        &(intro("act")
            + "  - { id: act, type: action, code: a.js, goto: fine }\n  - { id: fine, type: message, messages: [{ text: FINE }] }\n"),
        &[("a.js", "")],
    );
    let bot = load(&dir);
    let big = |n: usize| {
        FakeRunner::new(move |_, _| {
            Ok(ActionEffects {
                session: [("blob".to_string(), json!("x".repeat(n)))]
                    .into_iter()
                    .collect(),
                ..Default::default()
            })
        })
    };
    let (events, session) = talk_session(&bot, big(9 << 20), "/intro").await;
    assert_eq!(said(&events), ["Hi", "FINE"]);
    assert_eq!(session["blob"].as_str().unwrap().len(), 9 << 20);
    let (events, session) = talk_session(&bot, big(11 << 20), "/intro").await;
    assert_eq!(errors(&events), ["session_too_large"]);
    assert!(session.get("blob").is_none());
}

#[tokio::test]
async fn loop_protection_goes_to_error_occurred() {
    let dir = write_bot(
        "settings: { maxBlocksPerTurn: 10 }\n",
        &(intro("a")
            + "  - { id: a, type: action, set: { n: \"{n|increment}\" }, goto: b }\n  - { id: b, type: action, set: { m: 1 }, goto: a }\n"),
        &[],
    );
    let (events, session) = talk_session(&load(&dir), FakeRunner::ok(), "/intro").await;
    assert_eq!(errors(&events), ["loop_limit"]);
    assert_eq!(said(&events), ["Hi", "ERR"]);
    assert_eq!(blocks(&events).len(), 10 + 1); // 10 blocks, then Error occurred
    assert_eq!(session["n"], 5, "a counter stays a number");
    // Within the limit: no error.
    let dir = write_bot(
        "settings: { maxBlocksPerTurn: 3 }\n",
        &(intro("a")
            + "  - { id: a, type: action, set: { n: 1 }, goto: end }\n  - { id: end, type: message, messages: [{ text: END }] }\n"),
        &[],
    );
    let events = talk(&load(&dir), FakeRunner::ok(), "/intro").await;
    assert!(errors(&events).is_empty());
}

#[tokio::test]
async fn system_blocks_not_understood_disabled_and_internal_variables() {
    let dir = write_bot(
        "nlp:\n  intents: [{ name: hello, goto: greet, expressions: { en: [good morning] } }]\n  systemEntities: [email]\n",
        &(intro("~")
            + "  - { id: greet, label: greeting, type: message, messages: [{ text: \"Morning {sys.email}\" }] }\n"),
        &[],
    );
    let bot = load(&dir);
    let (events, session) = talk_session(
        &bot,
        FakeRunner::ok(),
        "/intro\nwhat?\ngood mornin, I'm ada@example.com",
    )
    .await;
    assert_eq!(said(&events), ["Hi", "NU", "Morning ada@example.com"]);
    let internal = &session["internal"];
    assert_eq!(internal["botId"], "test");
    assert_eq!(internal["sessionId"], "c1");
    assert_eq!(internal["version"], "LIVE");
    assert_eq!(internal["channel"], "cli");
    assert_eq!(internal["preferredLanguage"], "en");
    assert_eq!(internal["messageType"], "text");
    assert_eq!(
        internal["messageContent"],
        "good mornin, I'm ada@example.com"
    );
    assert_eq!(internal["nlp"]["intent"]["name"], "hello");
    assert_eq!(internal["nlp"]["entities"][0]["name"], "sys.email");
    assert_eq!(
        internal["currentDialogstate"],
        json!({"name": "greet", "id": "greet", "type": "message"})
    );
    assert_eq!(internal["previousDialogstate"]["id"], "not-understood");

    std::fs::write(
        dir.path().join("bot.yaml"),
        "id: test\nname: Test\nsettings: { disabled: true }\n",
    )
    .unwrap();
    assert_eq!(
        said(&talk(&load(&dir), FakeRunner::ok(), "/intro\nhello").await),
        ["OFF", "OFF"]
    );
}

#[tokio::test]
async fn postbacks_opaque_legacy_and_unknown() {
    let dir = write_bot(
        "",
        &(intro("~")
            + "  - { id: b, label: bee, type: message, messages: [{ text: \"B {x}\" }] }\n"),
        &[],
    );
    let bot = load(&dir);
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path(), FakeRunner::ok());
    let send = |payload: &str| {
        sandbot::flow::Inbound::new(
            "c",
            "cli",
            sandbot::flow::InboundKind::Postback {
                title: None,
                payload: payload.into(),
            },
        )
    };
    let legacy = r#"{"nextDialogstateId":"bee","params":[{"key":"x","value":"legacy"}]}"#;
    let out = engine.turn(&bot, send(legacy)).await.unwrap();
    assert_eq!(said(&out.events), ["B legacy"]);
    let out = engine
        .turn(&bot, send("pb_00000000000000000000"))
        .await
        .unwrap();
    assert_eq!(errors(&out.events), ["unknown_postback"]);
    assert_eq!(said(&out.events), ["NU"]);
    let goto = sandbot::flow::InboundKind::Goto {
        next: "b".into(),
        params: [("x".to_string(), json!("direct"))].into_iter().collect(),
    };
    let out = engine
        .turn(&bot, sandbot::flow::Inbound::new("c", "cli", goto))
        .await
        .unwrap();
    assert_eq!(said(&out.events), ["B direct"]);
}

#[tokio::test]
async fn variables_changed_runs_its_block_once_per_change_then_goes_on() {
    let dir = write_bot(
        r#"events:
  variablesChanged:
    - { variables: [user.email, plan], goto: changed }
"#,
        &(intro("ask")
            + r#"
  - { id: ask, type: input, variable: user.email, question: "Email?", nlp: false, goto: plan }
  - { id: plan, type: action, set: { plan: gold }, goto: done }
  - { id: done, type: message, messages: [{ text: "Done {plan}" }] }
  - { id: changed, type: message, messages: [{ text: "Changed {events.variablesChanged[0]}" }] }
"#),
        &[],
    );
    let bot = load(&dir);
    // The answer changes user.email, the action then plan: each runs the
    // event's block once, and the flow goes on where it was going. The
    // second introduction writes the same values: nothing fires.
    let (events, session) = crate::flow::support::talk_session(
        &bot,
        FakeRunner::ok(),
        "/intro\nann@example.com\n/intro",
    )
    .await;
    assert_eq!(
        said(&events),
        [
            "Hi",
            "Email?",
            "Changed user.email",
            "Changed plan",
            "Done gold",
            "Hi",
            "Done gold"
        ]
    );
    assert_eq!(
        blocks(&events),
        [
            "intro", "ask", "changed", "plan", "changed", "done", "intro", "ask", "plan", "done"
        ]
    );
    assert_eq!(
        session["events"]["variablesChanged"],
        serde_json::json!(["plan"])
    );

    // Validation: the block must exist, the paths must be paths.
    let broken = write_bot(
        "events:\n  variablesChanged:\n    - { variables: [\"a..b\"], goto: nope }\n",
        &intro("intro"),
        &[],
    );
    let problems = sandbot::flow::Bot::load(broken.path())
        .err()
        .unwrap()
        .to_string();
    assert!(
        problems.contains("bot.yaml: events.variablesChanged[0].goto: unknown block `nope`"),
        "{problems}"
    );
    assert!(
        problems.contains("events.variablesChanged[0].variables[0]: `a..b` is not a session path"),
        "{problems}"
    );
}
