//! `safeguard figures`: the transparency figures of a period, from the data directory's
//! store (the same computation as `GET /v1/figures`).

use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cmd_serve::DataDirArg;

/// Arguments of `safeguard figures`.
#[derive(Debug, clap::Args)]
pub struct FiguresArgs {
    /// Period start, inclusive: a UTC date (2026-01-01, from its midnight) or Unix
    /// milliseconds.
    #[arg(long)]
    pub from: String,
    /// Period end, exclusive: a UTC date (its midnight, so `--to 2026-07-01` ends with the
    /// last millisecond of June) or Unix milliseconds.
    #[arg(long)]
    pub to: String,
    /// `json` (pretty) or `csv` (`section,name,value` rows).
    #[arg(long, default_value = "json")]
    pub format: String,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Runs `safeguard figures`.
pub fn run(a: &FiguresArgs) -> anyhow::Result<ExitCode> {
    let from = parse_instant(&a.from).context("--from")?;
    let to = parse_instant(&a.to).context("--to")?;
    if !matches!(a.format.as_str(), "json" | "csv") {
        bail!("--format must be json or csv, not {:?}", a.format);
    }
    let store = a.data.open()?;
    let f = safeguard_engine::figures::compute(store.as_ref(), from, to)?;
    if a.format == "csv" {
        print!("{}", f.to_csv());
    } else {
        println!("{}", serde_json::to_string_pretty(&f)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Unix milliseconds from `YYYY-MM-DD` (UTC midnight, as the console's figures page reads
/// it) or a number of milliseconds.
fn parse_instant(s: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    safeguard_console::views::parse_date(s)
        .map_err(|e| anyhow::anyhow!("{e} (or Unix milliseconds)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        assert_eq!(parse_instant("0").unwrap(), 0);
        assert_eq!(parse_instant("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_instant("1970-01-01").unwrap(), 0);
        assert_eq!(parse_instant("2000-03-01").unwrap(), 951_868_800_000);
        assert_eq!(parse_instant("2026-12-03").unwrap(), 1_796_256_000_000);
        assert_eq!(parse_instant("2024-02-29").unwrap(), 1_709_164_800_000);
        assert_eq!(parse_instant("9999-12-31").unwrap(), 253_402_214_400_000);
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-01-32",
            "yesterday",
            "2026-1",
            "300000000-01-01",
            "-5-01-01",
            "10000-01-01",
        ] {
            assert!(parse_instant(bad).is_err(), "{bad}");
        }
    }
}
