//! `triage schema`: the plugin config's JSON Schema, made from the config types the filter reads
//! (`plugin/core/schema/plugin-config.schema.json` is this output).

/// Prints the plugin config's JSON Schema.
#[derive(clap::Args, Debug)]
pub struct SchemaArgs {}

pub fn run(_args: SchemaArgs) -> Result<bool, String> {
    let schema = serde_json::to_string_pretty(&triage_core::plugin_config_schema())
        .map_err(|error| error.to_string())?;
    println!("{schema}");
    Ok(true)
}
