"""helpers.loading reads image files at their full depth: 16-bit PNG/TIFF, 16-bit RGB TIFF, DICOM (rescale, window,
MONOCHROME1), scaled to 0..255 as the ``intensity`` option says; 8-bit files byte for byte; clear errors for volumes,
extra channels and mixed depths. Every file is written here by the test."""
from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import loading
from helpers.loading import ImageFileError, read_image

RAMP = np.linspace(0, 4000, 64 * 64).reshape(64, 64).astype(np.uint16)   # a 16-bit ramp 0..4000


def levels(array) -> int:
    return len(np.unique(np.asarray(array)))


def write_rgb16_png(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit RGB PNG written by hand (PIL cannot write one): IHDR bit depth 16, colour type 2, filter 0 rows."""
    height, width, _ = pixels.shape
    rows = b"".join(b"\0" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


def write_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", samples: int = 1,
                frames: int | None = None, **tags) -> Path:
    """An uncompressed (explicit VR little endian) DICOM file holding ``pixels`` (uint16) and ``tags``."""
    pydicom = pytest.importorskip("pydicom", reason="the dicom extra: pip install -e .[dicom]")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows, ds.Columns = pixels.shape[-2:] if samples == 1 else pixels.shape[-3:-1]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = samples, photometric
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if frames is not None:
        ds.NumberOfFrames = frames
    for name, value in tags.items():
        setattr(ds, name, value)
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    if samples in (1, 3):   # pydicom itself refuses to decode other sample counts
        assert pydicom.dcmread(path).pixel_array.shape == pixels.shape
    return path


# --------------------------------------------------------------------------- PNG / TIFF at full depth


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_16_bit_ramp_keeps_its_grey_levels(tmp_path, suffix):
    path = tmp_path / f"ramp{suffix}"
    Image.fromarray(RAMP).save(path)
    assert Image.open(path).mode.startswith("I;16")
    clipped = np.asarray(Image.open(path).convert("L"))
    assert (clipped == 255).mean() > 0.9                               # what PIL's convert("L") makes of it
    pixels = read_image(path, "L", (64, 64))
    assert pixels.dtype == np.uint8 and pixels.shape == (64, 64)
    assert levels(pixels) > 50 and (pixels == 255).mean() < 0.05
    assert pixels.min() == 0 and pixels.max() == 255                 # min-max: the ramp spans 0..255
    assert np.all(np.diff(pixels.ravel().astype(int)) >= 0)          # still a ramp


def test_a_fixed_window_maps_low_high_to_0_255_and_clips(tmp_path):
    path = tmp_path / "ramp.png"
    Image.fromarray(RAMP).save(path)
    pixels = read_image(path, "L", (64, 64), intensity=(1000, 3000)).astype(int)
    values = RAMP.astype(float)
    assert np.all(pixels[values <= 1000] == 0) and np.all(pixels[values >= 3000] == 255)
    inside = (values > 1000) & (values < 3000)
    assert np.abs(pixels[inside] - (values[inside] - 1000) * 255 / 2000).max() <= 0.5
    assert levels(pixels) > 50
    minmax = read_image(path, "L", (64, 64), intensity="minmax")
    assert not np.array_equal(minmax, pixels)
    for bad in ("window", (3000, 1000), (0, float("nan")), (1, 2, 3)):
        with pytest.raises(ValueError, match="intensity="):
            read_image(path, "L", (64, 64), intensity=bad)


def test_float_tiff_is_scaled_min_max(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray((RAMP / 4000.0 * 0.3).astype(np.float32)).save(path)
    assert Image.open(path).mode == "F"
    pixels = read_image(path, "L", (64, 64))
    assert pixels.min() == 0 and pixels.max() == 255 and levels(pixels) > 50


def test_8_bit_files_are_read_byte_for_byte(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "eight"
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(5):   # low contrast (100..120): a min-max stretch would change every byte
            Image.fromarray(rng.integers(100, 121, (12, 10), dtype=np.uint8)).save(folder / c / f"{i}.png")
    dataset = loading.load_image_folder(folder, quiet=True)
    assert "Intensity scaling" not in capsys.readouterr().out and "intensity" not in dataset.meta
    every = torch.cat([dataset.train.images, dataset.val.images, dataset.test.images])
    files = [np.array(Image.open(p)) for c in ("a", "b") for p in sorted((folder / c).glob("*.png"))]
    assert int(every.min()) >= 100 and int(every.max()) <= 120
    for pixels in files:
        assert any(torch.equal(image[0], torch.from_numpy(pixels)) for image in every)
    rgb = tmp_path / "rgb.png"
    colour = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    Image.fromarray(colour).save(rgb)
    assert np.array_equal(read_image(rgb, "RGB", (7, 9)), colour)
    stretched = read_image(folder / "a" / "0.png", "L", (10, 12), intensity="minmax")
    assert stretched.min() == 0 and stretched.max() == 255   # asked for explicitly, 8-bit images are scaled too


def test_16_bit_rgb_tiff_is_read_at_full_depth(tmp_path, monkeypatch):
    tifffile = pytest.importorskip("tifffile")
    rgb = np.stack([RAMP, RAMP // 2, 4000 - RAMP], axis=-1).astype(np.uint16)
    path = tmp_path / "rgb16.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    assert np.asarray(Image.open(path)).max() < 20        # PIL alone keeps only the high byte
    pixels = read_image(path, "RGB", (64, 64))
    assert pixels.shape == (64, 64, 3) and pixels.max() == 255
    assert all(levels(pixels[..., c]) > 50 for c in range(3))
    # one min-max over all channels keeps their ratio: green is half of red
    assert np.abs(pixels[..., 1].astype(int) - pixels[..., 0].astype(int) / 2).max() <= 1
    grey_folder = tmp_path / "set"
    for c in ("a", "b"):
        (grey_folder / c).mkdir(parents=True)
        for i in range(4):
            tifffile.imwrite(grey_folder / c / f"{i}.tif", rgb, photometric="rgb")
    dataset = loading.load_image_folder(grey_folder, quiet=True)
    assert dataset.channels == 3 and levels(dataset.train.images[0, 0].numpy()) > 50
    monkeypatch.setitem(sys.modules, "tifffile", None)   # without tifffile: refused, not truncated
    with pytest.raises(ValueError, match=r"rgb16\.tif is a 16-bit RGB image.*pip install tifffile"):
        read_image(path, "RGB", (64, 64))


def test_16_bit_rgb_png_is_refused_not_truncated(tmp_path):
    rgb = np.stack([RAMP, RAMP, RAMP], axis=-1)
    path = write_rgb16_png(tmp_path / "rgb16.png", rgb)
    assert Image.open(path).mode == "RGB"                 # PIL opens it, as 8 bits
    with pytest.raises(ImageFileError, match=r"rgb16\.png is a 16-bit RGB image.*TIFF"):
        read_image(path, "RGB", (64, 64))


def test_a_folder_of_16_bit_pngs_says_how_it_was_scaled(tmp_path, capsys):
    folder = tmp_path / "deep"
    for c, scale in (("a", 1), ("b", 2)):
        (folder / c).mkdir(parents=True)
        for i in range(5):
            Image.fromarray((RAMP // scale + 10 * i).astype(np.uint16)).save(folder / c / f"{i}.png")
    dataset = loading.load_dataset(folder, size=None)
    out = capsys.readouterr().out
    assert out.count("Intensity scaling") == 1 and "16-bit" in out and "min-max per image" in out
    assert dataset.meta["intensity"] in out
    image = dataset.train.images[0, 0].numpy()
    assert levels(image) > 50 and (image == 255).mean() < 0.05
    windowed = loading.load_dataset(folder, size=None, intensity=(0, 8000))
    assert "fixed window 0..8000" in capsys.readouterr().out
    assert int(windowed.train.images.max()) <= 128          # 4000 + 40 of 8000: the lower half only
    npz = tmp_path / "set.npz"
    np.savez(npz, **{f"{s}_{p}": np.zeros((2, 4, 4) if p == "images" else (2,), np.uint8)
                     for s in loading.SPLITS for p in ("images", "labels")})
    with pytest.raises(ValueError, match="applies to image folders"):
        loading.load_dataset(npz, intensity="minmax")


# --------------------------------------------------------------------------- DICOM


def test_dicom_rescale_slope_intercept_and_window(tmp_path):
    stored = np.array([[412, 512], [612, 1000]], dtype=np.uint16)     # x 2 - 1024 -> -200, 0, 200, 976 HU
    path = write_dicom(tmp_path / "ct.dcm", stored, RescaleSlope=2, RescaleIntercept=-1024,
                       WindowCenter=0, WindowWidth=400)
    assert loading.is_dicom(path)
    pixels = read_image(path, "L", (2, 2))
    assert pixels.tolist() == [[0, 128], [255, 255]]                  # window -200..200 HU
    several = write_dicom(tmp_path / "two_windows.dcm", stored, RescaleSlope=2, RescaleIntercept=-1024,
                          WindowCenter=[0, 1000], WindowWidth=[400, 4000])
    assert read_image(several, "L", (2, 2)).tolist() == [[0, 128], [255, 255]]   # the first pair
    bare = write_dicom(tmp_path / "no_window.dcm", stored, RescaleSlope=2, RescaleIntercept=-1024)
    assert read_image(bare, "L", (2, 2)).tolist() == [[0, 43], [87, 255]]        # min-max over -200..976
    fixed = read_image(path, "L", (2, 2), intensity=(-1024, 1024))                # in HU, after the rescale
    assert fixed.tolist() == [[103, 128], [152, 249]]


def test_dicom_monochrome1_is_inverted(tmp_path):
    stored = np.tile(np.arange(0, 4000, 40, dtype=np.uint16), (4, 1))
    normal = read_image(write_dicom(tmp_path / "m2.dcm", stored), "L", (100, 4))
    inverted = read_image(write_dicom(tmp_path / "m1.dcm", stored, photometric="MONOCHROME1"), "L", (100, 4))
    assert normal[0, 0] == 0 and normal[0, -1] == 255 and levels(normal) > 50
    assert np.array_equal(inverted, 255 - normal)


def test_a_dicom_folder_with_extensionless_files(tmp_path, capsys):
    stored = (RAMP[:16, :16] + 1000).astype(np.uint16)
    for c in ("a", "b"):
        (tmp_path / "scans" / c).mkdir(parents=True)
        for i in range(4):
            name = f"IM{i:04d}" if i % 2 else f"{i}.dcm"   # scanners often write no extension
            write_dicom(tmp_path / "scans" / c / name, stored, RescaleSlope=1, RescaleIntercept=-1000,
                        **({"WindowCenter": 500, "WindowWidth": 1000} if c == "a" else {}))
    (tmp_path / "scans" / "a" / "notes").write_text("not an image")
    dataset = loading.load_image_folder(tmp_path / "scans", size=None, quiet=True)
    assert sum(map(len, (dataset.train, dataset.val, dataset.test))) == 8 and dataset.channels == 1
    out = capsys.readouterr().out
    assert "DICOM" in out and "4 of 8 DICOM files have one" in out


def test_missing_pydicom_says_how_to_install_it(tmp_path, monkeypatch):
    path = write_dicom(tmp_path / "x.dcm", np.zeros((4, 4), np.uint16))
    monkeypatch.setitem(sys.modules, "pydicom", None)   # import pydicom now raises ImportError
    with pytest.raises(ModuleNotFoundError, match=r"x\.dcm is a DICOM file.*pip install 'ftlab\[dicom\]'"):
        read_image(path, "L", (4, 4))


# --------------------------------------------------------------------------- errors


def _two_class_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / c / f"{i}.png")
    return folder


def test_volumes_and_multi_frame_files_are_refused(tmp_path):
    folder = _two_class_folder(tmp_path, "pages")
    pages = [Image.fromarray(np.full((8, 8), v, np.uint16)) for v in (0, 1000, 2000)]
    pages[0].save(folder / "a" / "stack.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(ValueError, match=r"stack\.tif is a 3-page TIF file: a 3D volume.*separate 2D files"):
        loading.load_image_folder(folder, quiet=True)
    frames = write_dicom(tmp_path / "cine.dcm", np.zeros((3, 4, 4), np.uint16), frames=3)
    with pytest.raises(ValueError, match=r"cine\.dcm is a multi-frame DICOM \(3 frames\).*separate 2D files"):
        read_image(frames, "L", (4, 4))
    dicom_folder = _two_class_folder(tmp_path, "dicom_pages")
    write_dicom(dicom_folder / "b" / "volume.dcm", np.zeros((2, 8, 8), np.uint16), frames=2)
    with pytest.raises(ValueError, match=r"volume\.dcm is a multi-frame DICOM"):
        loading.load_image_folder(dicom_folder, quiet=True)


def test_more_than_three_channels_are_refused_and_opaque_alpha_is_dropped(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    opaque = tmp_path / "opaque.png"
    Image.fromarray(np.dstack([rgb, np.full((6, 5), 255, np.uint8)])).save(opaque)
    assert np.array_equal(read_image(opaque, "RGB", (5, 6)), rgb)
    see_through = tmp_path / "see_through.png"
    alpha = np.full((6, 5), 255, np.uint8)
    alpha[0, 0] = 10
    Image.fromarray(np.dstack([rgb, alpha])).save(see_through)
    with pytest.raises(ValueError, match=r"see_through\.png has 4 channels \(RGBA, with transparent pixels\)"):
        read_image(see_through, "RGB", (5, 6))
    four = write_dicom(tmp_path / "four.dcm", np.zeros((4, 4, 4), np.uint16), photometric="ARGB", samples=4)
    with pytest.raises(ValueError, match=r"four\.dcm has 4 channels; images must be grey \(1 channel\) or RGB"):
        loading._image_info(four)


def test_a_folder_mixing_8_and_16_bit_files_is_refused(tmp_path):
    folder = _two_class_folder(tmp_path, "mixed")
    Image.fromarray(RAMP).save(folder / "b" / "deep.png")
    with pytest.raises(ValueError, match=r"mixes bit depths: .*\.png is 8-bit but .*deep\.png has 16 bits.*"
                                         r"Convert the files to one depth"):
        loading.load_image_folder(folder, quiet=True)


# ----------------------------------------------------------------------------- the scaling as a run's setting

def test_intensity_in_text_form():
    from helpers.loading import parse_intensity
    assert parse_intensity("auto") == "auto" and parse_intensity(" MinMax ") == "minmax"
    assert parse_intensity("0,4095") == (0.0, 4095.0) and parse_intensity((1, 2)) == (1, 2)
    for bad in ("4095,0", "0;4095", "window", "1,2,3"):
        with pytest.raises(ValueError, match="LOW,HIGH"):
            parse_intensity(bad)


def test_a_runs_intensity_is_part_of_its_identity_and_auto_changes_no_stored_hash():
    from helpers.experiments import RunConfig
    auto = RunConfig(dataset="scans", strategy="last")
    assert "intensity" not in auto.flat(), "runs stored before the field existed keep their hash"
    window = RunConfig(dataset="scans", strategy="last", intensity="0,4095")
    assert window.flat()["intensity"] == "0,4095" and window.key() != auto.key()
    row = {**auto.flat(), "config_hash": auto.key(), "requested": "last"}
    assert RunConfig.from_row(row) == auto, "a row without the column rebuilds to its run"
    row = {**window.flat(), "config_hash": window.key(), "requested": "last"}
    assert RunConfig.from_row(row) == window
    mixed = {**auto.flat(), "intensity": float("nan"), "config_hash": auto.key(), "requested": "last"}
    assert RunConfig.from_row(mixed) == auto, "a blank cell in a table mixing both kinds of rows"


def test_a_run_reads_its_folder_with_its_own_window(tmp_path):
    from helpers.experiments import RunConfig, prepare_data
    folder = tmp_path / "ramps"
    for name, top in {"a": 1000, "b": 3000}.items():
        (folder / name).mkdir(parents=True)
        for i in range(12):
            ramp = np.tile(np.linspace(0, top, 16), (16, 1)).astype(np.uint16)
            Image.fromarray(ramp).save(folder / name / f"{i}.png")
    config = dict(dataset=str(folder), data_size=16, val_share=0.2, fraction=1.0)
    own = prepare_data(RunConfig(**config)).train.images
    window = prepare_data(RunConfig(**config, intensity="0,4000")).train.images
    assert own.float().amax().item() == 255, "auto: each image from its own minimum to maximum"
    assert window.float().amax().item() < 255 * 0.8, "a fixed window keeps the classes' different brightness"
