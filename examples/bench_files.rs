//! Input files for the benchmark scripts in `benches/*.sh`.
//!
//! ```text
//! cargo run --release --example bench_files -- series DIR COUNT BYTES [SET]
//! cargo run --release --example bench_files -- multiframe FILE BYTES [SET]
//! ```
//!
//! - `series`: COUNT single-frame CT Image Storage files of about BYTES bytes each
//!   (square 16-bit frame sized to fit), Explicit VR Little Endian, one SOP Instance
//!   UID each, written as `DIR/000001.dcm`, ... with `dicom-object`.
//! - `multiframe`: one Multi-frame Grayscale Word Secondary Capture file with
//!   512×512×16-bit frames, as many as fit in BYTES of Pixel Data (1 GiB: 2048
//!   frames), Explicit VR Little Endian. The header is built with `dicom-object`;
//!   the Pixel Data element is then written frame by frame, so memory stays at one
//!   frame whatever the size.
//!
//! With `BENCH_TS=implicit` in the environment, both are written in Implicit VR
//! Little Endian instead. With `BENCH_SERIES=N`, the `series` instances are dealt
//! round-robin into N series of the one study (Series Instance UIDs `...9.SET.2`,
//! `...9.SET.2.2`, ..., Series Number 1 to N).
//!
//! UIDs are derived from the fixtures' private root (`ROOT.9.SET....`, SET defaults
//! to 1), so two sets generated with different SETs never share a UID. Every file
//! is read back (up to Pixel Data) as a self-check.

use std::error::Error;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use dicom_core::value::C;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{FileDicomObject, InMemDicomObject, OpenFileOptions};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Private UID root of the project's generated data (fake; test data only).
const ROOT: &str = "1.2.826.0.1.3680043.10.1234";
const IMPLEMENTATION_CLASS_UID: &str = "1.2.826.0.1.3680043.10.1234.0.1";
const IMPLEMENTATION_VERSION_NAME: &str = "PACSNET_BENCH_1";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";

/// `BENCH_TS=implicit`: Implicit VR Little Endian files.
/// Series the `series` instances are dealt into (`BENCH_SERIES`, default 1).
fn series_count() -> u64 {
    std::env::var("BENCH_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

fn implicit() -> bool {
    std::env::var("BENCH_TS").as_deref() == Ok("implicit")
}
const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
const MF_GRAYSCALE_WORD_SC: &str = "1.2.840.10008.5.1.4.1.1.7.3";

/// Multi-frame geometry: 512×512, 16 bits allocated.
const MF_SIDE: u16 = 512;
const MF_FRAME_BYTES: u64 = MF_SIDE as u64 * MF_SIDE as u64 * 2;

fn usage() -> ! {
    eprintln!("usage: bench_files series DIR COUNT BYTES [SET]\n       bench_files multiframe FILE BYTES [SET]");
    std::process::exit(2)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> u64 { args.get(i).and_then(|s| s.parse().ok()).unwrap_or_else(|| usage()) };
    match args.first().map(String::as_str) {
        Some("series") if args.len() >= 4 => {
            let set = if args.len() > 4 { num(4) } else { 1 };
            series(Path::new(&args[1]), num(2), num(3), set)
        }
        Some("multiframe") if args.len() >= 3 => {
            let set = if args.len() > 3 { num(3) } else { 1 };
            multiframe(Path::new(&args[1]), num(2), set)
        }
        _ => usage(),
    }
}

fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

fn put_u16(obj: &mut InMemDicomObject, tag: Tag, value: u16) {
    obj.put(DataElement::new(
        tag,
        VR::US,
        PrimitiveValue::U16(C::from_elem(value, 1)),
    ));
}

/// Patient, study, series, equipment and image pixel attributes shared by both kinds.
fn common(o: &mut InMemDicomObject, sop_class: &str, set: u64, instance: u64, rows: u16, columns: u16) {
    put_str(o, tags::SOP_CLASS_UID, VR::UI, sop_class);
    put_str(
        o,
        tags::SOP_INSTANCE_UID,
        VR::UI,
        &format!("{ROOT}.9.{set}.3.{instance}"),
    );
    put_str(o, tags::STUDY_DATE, VR::DA, "20250101");
    put_str(o, tags::STUDY_TIME, VR::TM, "120000");
    put_str(o, tags::ACCESSION_NUMBER, VR::SH, &format!("BENCH-{set}"));
    put_str(o, tags::MANUFACTURER, VR::LO, "PACS-NET BENCH");
    put_str(o, tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
    put_str(o, tags::PATIENT_NAME, VR::PN, "BENCH^PATIENT");
    put_str(o, tags::PATIENT_ID, VR::LO, "BENCH-0001");
    put_str(o, tags::PATIENT_BIRTH_DATE, VR::DA, "");
    put_str(o, tags::PATIENT_SEX, VR::CS, "O");
    put_str(o, tags::STUDY_INSTANCE_UID, VR::UI, &format!("{ROOT}.9.{set}.1"));
    // Instance i goes to series (i - 1) % N; the first series keeps the UID it
    // always had.
    let series = (instance.max(1) - 1) % series_count() + 1;
    let series_uid = match series {
        1 => format!("{ROOT}.9.{set}.2"),
        n => format!("{ROOT}.9.{set}.2.{n}"),
    };
    put_str(o, tags::SERIES_INSTANCE_UID, VR::UI, &series_uid);
    put_str(o, tags::STUDY_ID, VR::SH, "BENCH");
    put_str(o, tags::SERIES_NUMBER, VR::IS, &series.to_string());
    put_str(o, tags::INSTANCE_NUMBER, VR::IS, &instance.to_string());
    put_str(o, tags::PATIENT_ORIENTATION, VR::CS, "");
    put_u16(o, tags::SAMPLES_PER_PIXEL, 1);
    put_str(o, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    put_u16(o, tags::ROWS, rows);
    put_u16(o, tags::COLUMNS, columns);
    put_u16(o, tags::BITS_ALLOCATED, 16);
    put_u16(o, tags::BITS_STORED, 12);
    put_u16(o, tags::HIGH_BIT, 11);
    put_u16(o, tags::PIXEL_REPRESENTATION, 0);
    put_str(o, tags::BURNED_IN_ANNOTATION, VR::CS, "NO");
}

/// A cheap 12-bit pattern that differs per instance and per frame.
fn fill_frame(buf: &mut [u16], columns: usize, seed: u64) {
    for (i, px) in buf.iter_mut().enumerate() {
        let (x, y) = ((i % columns) as u64, (i / columns) as u64);
        *px = ((x * 7 + y * 3 + seed * 131) % 4096) as u16;
    }
}

fn with_meta(obj: InMemDicomObject) -> Result<FileDicomObject<InMemDicomObject>> {
    Ok(obj.with_meta(
        FileMetaTableBuilder::new()
            .transfer_syntax(if implicit() { IMPLICIT_VR_LE } else { EXPLICIT_VR_LE })
            .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(IMPLEMENTATION_VERSION_NAME),
    )?)
}

/// Read `path` back up to Pixel Data and check its SOP Instance UID.
fn self_check(path: &Path, uid: &str) -> Result<()> {
    let obj = OpenFileOptions::new().read_until(tags::PIXEL_DATA).open_file(path)?;
    let got = obj.element(tags::SOP_INSTANCE_UID)?.to_str()?;
    if got.trim_end_matches('\0') != uid {
        return Err(format!("{}: read back SOP Instance UID {got}", path.display()).into());
    }
    Ok(())
}

fn ct_instance(set: u64, instance: u64, side: u16, pixels: Vec<u16>) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    put_str(&mut o, tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\AXIAL");
    common(&mut o, CT_IMAGE_STORAGE, set, instance, side, side);
    put_str(&mut o, tags::MODALITY, VR::CS, "CT");
    put_str(&mut o, tags::KVP, VR::DS, "120");
    put_str(&mut o, tags::SLICE_THICKNESS, VR::DS, "1");
    put_str(&mut o, tags::ACQUISITION_NUMBER, VR::IS, "1");
    put_str(
        &mut o,
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        &format!("0\\0\\{instance}"),
    );
    put_str(&mut o, tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "1\\0\\0\\0\\1\\0");
    put_str(
        &mut o,
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        &format!("{ROOT}.9.{set}.4"),
    );
    put_str(&mut o, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
    put_str(&mut o, tags::PIXEL_SPACING, VR::DS, "0.5\\0.5");
    put_str(&mut o, tags::RESCALE_INTERCEPT, VR::DS, "-1024");
    put_str(&mut o, tags::RESCALE_SLOPE, VR::DS, "1");
    o.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(C::from_vec(pixels)),
    ));
    o
}

/// COUNT CT files of about BYTES each.
fn series(dir: &Path, count: u64, bytes: u64, set: u64) -> Result<()> {
    fs::create_dir_all(dir)?;
    // Size of everything but the pixel values, measured on a 2×2 instance.
    let probe = with_meta(ct_instance(set, count.max(1), 2, vec![0; 4]))?;
    let mut v = Vec::new();
    probe.write_all(&mut v)?;
    let overhead = v.len() as u64 - 8;
    let side = ((bytes.saturating_sub(overhead) / 2) as f64).sqrt().floor().max(2.0) as u16;
    let mut total = 0u64;
    for i in 1..=count {
        let mut pixels = vec![0u16; side as usize * side as usize];
        fill_frame(&mut pixels, side as usize, i);
        let obj = with_meta(ct_instance(set, i, side, pixels))?;
        let path = dir.join(format!("{i:06}.dcm"));
        obj.write_to_file(&path)?;
        self_check(&path, &format!("{ROOT}.9.{set}.3.{i}"))?;
        total += fs::metadata(&path)?.len();
    }
    println!(
        "wrote {count} CT files of {side}x{side} (about {} bytes each, {total} bytes) in {}",
        total / count.max(1),
        dir.display()
    );
    Ok(())
}

/// One multi-frame file with BYTES of Pixel Data (whole 512×512×16-bit frames).
fn multiframe(path: &Path, bytes: u64, set: u64) -> Result<()> {
    let frames = (bytes / MF_FRAME_BYTES).max(1);
    let pixel_len = frames * MF_FRAME_BYTES;
    let pixel_len32 = u32::try_from(pixel_len).map_err(|_| "Pixel Data longer than 4 GiB - 2")?;
    let mut o = InMemDicomObject::new_empty();
    put_str(&mut o, tags::IMAGE_TYPE, VR::CS, "DERIVED\\SECONDARY");
    common(&mut o, MF_GRAYSCALE_WORD_SC, set, 1, MF_SIDE, MF_SIDE);
    put_str(&mut o, tags::MODALITY, VR::CS, "OT");
    put_str(&mut o, tags::CONVERSION_TYPE, VR::CS, "WSD");
    put_str(&mut o, tags::NUMBER_OF_FRAMES, VR::IS, &frames.to_string());
    o.put(DataElement::new(
        tags::FRAME_INCREMENT_POINTER,
        VR::AT,
        PrimitiveValue::Tags(C::from_elem(tags::FRAME_TIME, 1)),
    ));
    put_str(&mut o, tags::FRAME_TIME, VR::DS, "33");
    put_str(&mut o, tags::RESCALE_INTERCEPT, VR::DS, "0");
    put_str(&mut o, tags::RESCALE_SLOPE, VR::DS, "1");
    put_str(&mut o, tags::RESCALE_TYPE, VR::LO, "US");
    put_str(&mut o, tags::WINDOW_CENTER, VR::DS, "2048");
    put_str(&mut o, tags::WINDOW_WIDTH, VR::DS, "4096");
    // Pixel Data is the data set's last element: write everything before it, then
    // its header, then the frames.
    let file = with_meta(o)?;
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    file.write_all(&mut w)?;
    if implicit() {
        w.write_all(&[0xE0, 0x7F, 0x10, 0x00])?;
    } else {
        w.write_all(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0])?;
    }
    w.write_all(&pixel_len32.to_le_bytes())?;
    let mut frame = vec![0u16; MF_SIDE as usize * MF_SIDE as usize];
    let mut raw = vec![0u8; MF_FRAME_BYTES as usize];
    for f in 0..frames {
        fill_frame(&mut frame, MF_SIDE as usize, f);
        for (dst, px) in raw.chunks_exact_mut(2).zip(&frame) {
            dst.copy_from_slice(&px.to_le_bytes());
        }
        w.write_all(&raw)?;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let uid = format!("{ROOT}.9.{set}.3.1");
    self_check(path, &uid)?;
    let size = fs::metadata(path)?.len();
    let header = size - pixel_len;
    if header > 64 * 1024 || (implicit() && header < 8) {
        return Err(format!("unexpected header size {header}").into());
    }
    println!(
        "wrote {} ({size} bytes: {frames} frames of 512x512x16 bit, {pixel_len} bytes of Pixel Data)",
        PathBuf::from(path).display()
    );
    Ok(())
}
