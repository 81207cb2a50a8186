//! The commands that look at models without running them: `models`, `summary`, `diagram`,
//! `pretrained`, and `download`.

use anyhow::{Result, bail};
use inception::models::{Arch, ModelConfig};
use inception::summary::{Summary, group_digits};

use crate::ModelArgs;

/// `inception summary`.
pub fn summary(model: ModelArgs, blocks: bool, json: bool) -> Result<()> {
    let cfg = model.config()?;
    let graph = cfg.graph()?;
    let summary = if blocks {
        Summary::by_block(&graph)
    } else {
        Summary::of(&graph)
    };
    if json {
        let mut value = serde_json::to_value(&summary)?;
        value["config"] = serde_json::to_value(&cfg)?;
        value["feature_info"] = serde_json::to_value(cfg.feature_info()?)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", summary.to_table());
    }
    Ok(())
}

/// `inception diagram`.
pub fn diagram(model: ModelArgs, output: std::path::PathBuf, scale: f32) -> Result<()> {
    let graph = model.config()?.graph()?;
    let svg = inception::diagram::to_svg(&graph);
    let ext = output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let bytes = match ext.as_deref() {
        Some("svg") => svg.into_bytes(),
        Some("png") => {
            if !(scale > 0.0 && scale <= 8.0) {
                bail!("--scale {scale} must be in (0, 8]");
            }
            inception::diagram::svg_to_png(&svg, scale).map_err(anyhow::Error::msg)?
        }
        _ => bail!(
            "{}: unknown diagram format; use a .svg or .png file name",
            output.display()
        ),
    };
    inception::files::write_atomic(&output, &bytes)?;
    eprintln!("wrote {} ({} bytes)", output.display(), bytes.len());
    Ok(())
}

/// `inception download`.
pub fn download(names: Vec<String>) -> Result<()> {
    let cache = crate::progress::download_cache()?;
    for name in names {
        let entry = inception::pretrained::find(&name)?;
        let path = cache.fetch(&entry)?;
        println!("{}", path.display());
    }
    Ok(())
}

pub fn pretrained_list(json: bool) -> Result<()> {
    let all = inception::pretrained::registry();
    let cache = inception::pretrained::Cache::new().ok();
    if json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                v["cached"] = cache.as_ref().is_some_and(|c| c.path(e).is_file()).into();
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<26} {:<20} {:<7} source", "name", "model", "cached");
    for e in &all {
        let cached = cache.as_ref().is_some_and(|c| c.path(e).is_file());
        println!(
            "{:<26} {:<20} {:<7} {}",
            e.name,
            e.arch.name(),
            if cached { "yes" } else { "no" },
            e.source
        );
    }
    Ok(())
}

pub fn models(json: bool) -> Result<()> {
    let mut rows = Vec::new();
    for arch in Arch::ALL {
        let cfg = ModelConfig::new(arch);
        let graph = cfg.graph()?;
        let p = graph.params();
        let aux = arch
            .has_aux_heads()
            .then(|| cfg.clone().with_aux_logits(true).graph())
            .transpose()?
            .map(|g| g.params().trainable);
        let min = cfg.min_input_size();
        rows.push(serde_json::json!({
            "name": arch.name(),
            "description": arch.description(),
            "trainable_params": p.trainable,
            "non_trainable_params": p.non_trainable,
            "trainable_params_with_aux": aux,
            "input_size": arch.default_input_size(),
            "min_input_size": min,
            "macs": graph.macs_for(&[graph.main_output().node]),
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<20} {:>12} {:>14} {:>7} {:>5} {:>7}  description",
        "model", "params", "with aux", "input", "min", "GMACs"
    );
    for r in rows {
        let aux = r["trainable_params_with_aux"]
            .as_u64()
            .map_or("-".to_string(), group_digits);
        println!(
            "{:<20} {:>12} {:>14} {:>7} {:>5} {:>7.2}  {}",
            r["name"].as_str().unwrap_or_default(),
            group_digits(r["trainable_params"].as_u64().unwrap_or_default()),
            aux,
            r["input_size"].as_u64().unwrap_or_default(),
            r["min_input_size"]
                .as_u64()
                .map_or("-".to_string(), |m| m.to_string()),
            r["macs"].as_u64().unwrap_or_default() as f64 / 1e9,
            r["description"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}
