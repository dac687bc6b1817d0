#!/usr/bin/env bash
# DICOM decode speed of a 2,000 x 2,000 16-bit radiograph-like image, uncompressed and JPEG 2000
# (lossless and lossy, ~10:1), with `osteoai inspect --repeat 7` (median, from file bytes to the
# 8-bit image the model gets). The files are written by pydicom 3.0.2 with pylibjpeg-openjpeg
# 2.6.0 (the JPEG 2000 encoder; none is in osteoai's build), in a throw-away venv under
# $TMPDIR. Nothing is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q pydicom==3.0.2 numpy pylibjpeg==2.1.0 pylibjpeg-openjpeg==2.6.0
"$work/venv/bin/python" - "$work" <<'PY'
import sys, numpy as np, pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEG2000, generate_uid
work = sys.argv[1]
n = 2000
y, x = np.mgrid[0:n, 0:n].astype(np.float64)
rng = np.random.default_rng(1)
# Soft tissue and a bone shaft across the field, with noise: 16 bits stored.
img = 9000 + 30000 * np.exp(-((x - 1000) ** 2) / (2 * 450.0 ** 2))
img += 18000 * (np.abs((x - 1000) * 0.9 + (y - 1000) * 0.3) < 110)
img += rng.normal(0, 600, (n, n))
arr = np.clip(img, 0, 65535).astype(np.uint16)
def dataset():
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = n, n
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = arr.tobytes()
    return ds
dataset().save_as(f"{work}/dx16-uncompressed.dcm", enforce_file_format=True)
ds = dataset(); ds.compress(JPEG2000Lossless, arr, encoding_plugin="pylibjpeg")
ds.save_as(f"{work}/dx16-j2k-lossless.dcm", enforce_file_format=True)
ds = dataset(); ds.compress(JPEG2000, arr, encoding_plugin="pylibjpeg", j2k_cr=[10])
ds.save_as(f"{work}/dx16-j2k-lossy.dcm", enforce_file_format=True)
PY
ls -l "$work"/*.dcm | awk '{print $5, $9}'
echo "load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
cargo run -q -- inspect --repeat 7 "$work"/dx16-uncompressed.dcm "$work"/dx16-j2k-lossless.dcm "$work"/dx16-j2k-lossy.dcm \
  | grep -E '^/|Transfer syntax|size|decode'
