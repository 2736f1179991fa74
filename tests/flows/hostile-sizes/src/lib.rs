//! Test flow: sends the host things over the sizes it accepts. `attack`
//! names what (`output`, `event`, `error`, `task-name`, `line`), `mib` how
//! big; `events` emits `count` small events as fast as it can; `none`
//! returns a small output, so one deployment shows that the agent serves
//! the next run after an attack.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    /// What to make too large.
    attack: String,
    /// How many MiB.
    #[serde(default = "ten")]
    mib: usize,
    /// How many events, for `events`.
    #[serde(default)]
    count: u64,
}

fn ten() -> usize {
    10
}

fn hostile_sizes(params: Params) -> Result<String> {
    if params.attack == "events" {
        for i in 0..params.count {
            emit_event("hostile.flood", "hostile", &baton_sdk::serde_json::json!({"i": i}));
        }
        return Ok(format!("emitted {}", params.count));
    }
    let big = "x".repeat(params.mib << 20);
    match params.attack.as_str() {
        "output" => Ok(big),
        "event" => {
            emit_event("hostile.big", "hostile", &baton_sdk::serde_json::Value::String(big));
            Ok("the host took an oversized event".into())
        }
        "error" => bail!("{big}"),
        "task-name" => task(big).run(|| Ok("ran".to_owned())),
        "line" => {
            info!("{big}");
            Ok("logged".into())
        }
        _ => Ok("small".into()),
    }
}

baton_sdk::flow!(hostile_sizes);
