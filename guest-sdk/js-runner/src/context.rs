//! The one Boa context of an instance: built once (at snapshot time when
//! pre-initialized), with the prelude and lodash loaded.

use std::cell::RefCell;

use boa_engine::property::Attribute;
use boa_engine::{Context, Source, js_string};
use icu_provider::prelude::{BufferMarker, DynamicDryDataProvider};

const PRELUDE: &str = include_str!("../js/prelude.js");
/// The web-platform globals (`URL`, `TextEncoder`, `crypto`, …), loaded last;
/// it removes the natives from the global scope.
const WEB: &str = include_str!("../js/web.js");
/// lodash, fetched from the npm registry by the build script (pinned version
/// and integrity hash; not committed).
const LODASH: &str = include_str!("../vendor/lodash.min.js");
/// Run once like a code action, after the prelude and before lodash, so what
/// it leaves (shapes, property caches, names) sits low in the heap.
const WARMUP: &str = include_str!("../js/warmup.js");

/// A second line behind fuel: JS loops and recursion stop with a clear error.
const LOOP_ITERATION_LIMIT: u64 = 200_000_000;
const RECURSION_LIMIT: usize = 400;

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Runs `f` with the context, building it first if needed.
pub fn with<R>(f: impl FnOnce(&mut Context) -> R) -> R {
    CONTEXT.with(|cell| {
        let mut slot = cell.borrow_mut();
        let ctx = slot.get_or_insert_with(build);
        f(ctx)
    })
}

/// Boa's ICU4X data for the languages in `intl/languages.txt` (written by
/// scripts/intl-data.sh); other locales fall back to the root locale.
static INTL_DATA: &[u8] = include_bytes!("../intl/icudata.postcard");

/// Run before the snapshot so the parsed data index, the locale fallbacker
/// and the locale expander are part of it (not rebuilt in every action).
const INTL_WARMUP: &str = r#"
(1234.5).toLocaleString("en");
new Intl.DateTimeFormat("en", { dateStyle: "long", timeZone: "UTC" }).format(0);
"#;

fn intl_provider() -> impl DynamicDryDataProvider<BufferMarker> + 'static {
    use icu_provider_adapters::fallback::LocaleFallbackProvider;
    let blob = icu_provider_blob::BlobDataProvider::try_new_from_static_blob(INTL_DATA)
        .expect("the embedded Intl data is a valid blob");
    let fallbacker = icu_locale::LocaleFallbacker::try_new_with_buffer_provider(&blob)
        .expect("the embedded Intl data has the locale fallback data");
    LocaleFallbackProvider::new(blob, fallbacker)
}

fn build() -> Context {
    let mut ctx = Context::builder()
        .icu_buffer_provider(intl_provider())
        .expect("the Intl data has what Boa needs")
        .build()
        .expect("the context builds");
    ctx.runtime_limits_mut()
        .set_loop_iteration_limit(LOOP_ITERATION_LIMIT);
    ctx.runtime_limits_mut()
        .set_recursion_limit(RECURSION_LIMIT);
    let natives = crate::natives::object(&mut ctx);
    ctx.register_global_property(js_string!("__sandbot"), natives, Attribute::all())
        .expect("register the natives");
    ctx.eval(Source::from_bytes(PRELUDE))
        .expect("the prelude evaluates");
    let warmup_args = serde_json::json!({ "id": 1 });
    if let Err(e) = crate::drive::run_script(&mut ctx, WARMUP, &warmup_args) {
        panic!("the warm-up script failed: {}: {}", e.code, e.message);
    }
    ctx.eval(Source::from_bytes(LODASH))
        .expect("lodash evaluates");
    ctx.eval(Source::from_bytes(WEB))
        .expect("the web globals evaluate");
    ctx.eval(Source::from_bytes(INTL_WARMUP))
        .expect("the Intl warm-up evaluates");
    ctx.run_jobs().expect("no pending jobs at start");
    ctx
}
