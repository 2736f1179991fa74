//! Test flow: leaves one artifact of each kind (the markdown with raw HTML
//! and a `javascript:` link that must not run in the UI), and tries two
//! bad ones, logging the errors it gets back.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Params {
    /// The report's title.
    title: String,
}

#[derive(Serialize)]
struct Region {
    region: &'static str,
    orders: u32,
}

fn report(params: Params) -> Result<u32> {
    let markdown = format!(
        "# {}\n\n**1204** orders.\n\n<script>document.title = 'pwned'</script>\n\n[click](javascript:document.title='pwned')",
        params.title
    );
    baton_sdk::markdown_artifact("daily-report", &markdown)?;
    let rows =
        [Region { region: "eu-west", orders: 700 }, Region { region: "us-east", orders: 504 }];
    baton_sdk::table_artifact("regions", &rows)?;
    baton_sdk::link_artifact("", "https://example.com/dashboard", "Dashboard")?;
    baton_sdk::progress_artifact("load", 0.75)?;
    for bad in [
        baton_sdk::create_artifact("Bad Key", baton_sdk::ArtifactKind::Markdown, &json!("x")),
        baton_sdk::create_artifact("rows", baton_sdk::ArtifactKind::Table, &json!([1, 2])),
    ] {
        if let Err(error) = bad {
            warn!("refused: {error}");
        }
    }
    Ok(4)
}

baton_sdk::flow!(report);
