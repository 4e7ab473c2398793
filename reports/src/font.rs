//! The one font every chart uses, embedded (DejaVu Sans from the `dejavu`
//! crate) and registered with plotters' `ab_glyph` backend: rendering never
//! looks for a system font.

use std::sync::OnceLock;

use plotters::style::FontStyle;

/// The family name charts ask for.
pub const FAMILY: &str = "weir-sans";

/// Registers the embedded font once per process.
///
/// # Errors
///
/// When the embedded font cannot be parsed (never with the shipped bytes).
pub fn ensure_registered() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular())
                .and_then(|()| plotters::style::register_font(FAMILY, FontStyle::Bold, dejavu::sans::bold()))
                .map_err(|_| "the embedded DejaVu Sans font could not be parsed".to_owned())
        })
        .clone()
}
