//! `sandbot-intl-data SOURCE_DIR OUT_FILE LANG[,LANG…]`
//!
//! Reads Boa's ICU4X data blobs (one `*.postcard` per ICU component in
//! SOURCE_DIR, as boa_icu_provider ships them) and writes one blob with only
//! what the JS runner needs for the given languages: for every data marker,
//! the root (`und`) entries and the entries of each language and its regional
//! and script variants (`nl` keeps `nl`, `nl-BE`, `nl-SR`, …). The payloads
//! are copied byte for byte (no re-encoding), the output is sorted, so the
//! same inputs give the same bytes. Word segmentation dictionaries and LSTM
//! models (Thai, Lao, Khmer, Burmese, Chinese, Japanese) are left out.

use std::collections::BTreeSet;

use icu_provider::dynutil::UpcastDataPayload;
use icu_provider::export::{DataExporter, ExportMarker, FlushMetadata};
use icu_provider::prelude::*;
use icu_provider_blob::BlobDataProvider;
use icu_provider_blob::export::BlobExporter;

/// One payload's postcard bytes, written back verbatim: a postcard tuple of
/// `u8`s is exactly its bytes, with no length in front.
#[derive(Debug, Clone, PartialEq, yoke::Yokeable)]
struct Raw(Vec<u8>);

impl serde::Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(self.0.len())?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl databake::Bake for Raw {
    fn bake(&self, _: &databake::CrateEnv) -> databake::TokenStream {
        unreachable!("only exported to a blob")
    }
}

impl databake::BakeSize for Raw {
    fn borrows_size(&self) -> usize {
        self.0.len()
    }
}

icu_provider::data_struct!(Raw);

struct RawMarker;
impl DynamicDataMarker for RawMarker {
    type DataStruct = Raw;
}

/// Markers left out whatever the languages: dictionaries and LSTM models for
/// scripts without spaces between words (megabytes, for `Intl.Segmenter`).
const LEFT_OUT: &[&str] = &["SegmenterDictionary", "SegmenterLstm"];

fn components() -> Vec<(&'static str, &'static [DataMarkerInfo])> {
    vec![
        ("icu_calendar", icu_calendar::provider::MARKERS),
        ("icu_casemap", icu_casemap::provider::MARKERS),
        ("icu_collator", icu_collator::provider::MARKERS),
        ("icu_datetime", icu_datetime::provider::MARKERS),
        ("icu_decimal", icu_decimal::provider::MARKERS),
        ("icu_list", icu_list::provider::MARKERS),
        ("icu_locale", icu_locale::provider::MARKERS),
        (
            "icu_locale_fallback",
            icu_locale_fallback::provider::MARKERS,
        ),
        ("icu_normalizer", icu_normalizer::provider::MARKERS),
        ("icu_plurals", icu_plurals::provider::MARKERS),
        ("icu_segmenter", icu_segmenter::provider::MARKERS),
        ("icu_time", icu_time::provider::MARKERS),
    ]
}

fn keep(locale: &str, languages: &BTreeSet<&str>) -> bool {
    let language = locale.split(['-', '_']).next().unwrap_or(locale);
    language == "und" || languages.contains(language)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, source, out, langs] = args.as_slice() else {
        return Err("usage: sandbot-intl-data SOURCE_DIR OUT_FILE LANG[,LANG…]".into());
    };
    let languages: BTreeSet<&str> = langs.split(',').collect();
    let mut blob = Vec::new();
    let mut source_entries = Vec::new();
    let (mut kept, mut dropped) = (0usize, 0usize);
    {
        let mut exporter = BlobExporter::new_with_sink(Box::new(&mut blob));
        for (component, markers) in components() {
            let bytes = std::fs::read(format!("{source}/{component}.postcard"))?;
            let provider = BlobDataProvider::try_new_from_blob(bytes.into_boxed_slice())?;
            for marker in markers.iter().copied() {
                let name = marker.id.name();
                if LEFT_OUT.iter().any(|p| name.starts_with(p)) {
                    continue;
                }
                let Ok(ids) = provider.iter_ids_for_marker(marker) else {
                    continue; // not in Boa's data: Boa does not use it
                };
                // Data that must match other data (time zones) carries a
                // checksum; the new blob keeps it.
                let mut checksum = None;
                for id in &ids {
                    if !keep(&id.locale.to_string(), &languages) {
                        dropped += 1;
                        continue;
                    }
                    let request = DataRequest {
                        id: id.as_borrowed(),
                        ..Default::default()
                    };
                    let response = provider.load_data(marker, request)?;
                    checksum = checksum.or(response.metadata.checksum);
                    let raw: DataPayload<RawMarker> =
                        DataPayload::from_owned(Raw(response.payload.get().to_vec()));
                    let payload: DataPayload<ExportMarker> = ExportMarker::upcast(raw);
                    exporter.put_payload(marker, id.as_borrowed(), &payload)?;
                    source_entries.push((
                        marker,
                        id.as_borrowed().into_owned(),
                        response.payload.get().to_vec(),
                    ));
                    kept += 1;
                }
                let mut metadata = FlushMetadata::default();
                metadata.checksum = checksum;
                exporter.flush(marker, metadata)?;
            }
        }
        exporter.close()?;
    }
    check(&blob, &source_entries)?;
    std::fs::write(out, &blob)?;
    eprintln!(
        "{out}: {} bytes, {kept} entries kept, {dropped} left out",
        blob.len()
    );
    Ok(())
}

/// Every entry kept reads back from the new blob with the same bytes.
fn check(
    blob: &[u8],
    entries: &[(DataMarkerInfo, DataIdentifierCow<'static>, Vec<u8>)],
) -> Result<(), Box<dyn std::error::Error>> {
    let provider = BlobDataProvider::try_new_from_blob(blob.to_vec().into_boxed_slice())?;
    for (marker, id, bytes) in entries {
        let request = DataRequest {
            id: id.as_borrowed(),
            ..Default::default()
        };
        let got = provider.load_data(*marker, request)?;
        if *got.payload.get() != &bytes[..] {
            return Err(
                format!("{:?} {id:?}: the bytes differ after the export", marker.id).into(),
            );
        }
    }
    Ok(())
}
