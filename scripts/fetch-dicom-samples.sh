#!/usr/bin/env bash
# Public DICOM samples for the real-file decoding test (tests/dicom.rs), from the test data that
# pydicom ships on PyPI (MIT licence): pydicom 3.0.2 and pydicom-data 1.0.0, wheels checked by
# SHA-256. Nothing is committed; the files go to $OSTEOAI_DICOM_SAMPLES
# (default ~/.cache/osteoai/dicom-samples). Among them: CR radiographs (RG1: 1841x1955 15-bit
# MONOCHROME1; RG3: 1760x1760 10-bit MONOCHROME1) uncompressed and JPEG 2000 lossless/lossy,
# JPEG lossless (process 14 SV1), JPEG-LS lossless and near-lossless, RLE, deflate, big endian,
# a Modality LUT Sequence (mlut_18) and a VOI LUT Sequence (vlut_04).
set -euo pipefail
dest="${OSTEOAI_DICOM_SAMPLES:-$HOME/.cache/osteoai/dicom-samples}"
mkdir -p "$dest"
version=2  # bump when the list below changes
if [ "$(cat "$dest/.complete" 2>/dev/null)" = "$version" ]; then
  echo "dicom samples: already in $dest"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --dest "$tmp" pydicom==3.0.2 pydicom-data==1.0.0
( cd "$tmp" && sha256sum -c - <<'SUMS'
abf971a5440f84dbaf42c4b6758e30e62480902584f8b270b9a5d146e278a07b  pydicom-3.0.2-py3-none-any.whl
622ac97265f1d91f76b5120b5bd6eb0f57737c392ef863b72c71779c91e33637  pydicom_data-1.0.0-py3-none-any.whl
SUMS
)
python3 - "$tmp" "$dest" <<'PY'
import sys, zipfile, os
tmp, dest = sys.argv[1:]
wanted = {
    "pydicom-3.0.2-py3-none-any.whl": ("pydicom/data/test_files/", [
        "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
        "JPEGLSNearLossless_16.dcm", "JPEG2000.dcm", "JPGExtended.dcm", "CT_small.dcm",
        "image_dfl.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_rle.dcm",
        "examples_ybr_color.dcm", "rtplan.dcm", "SC_ybr_full_422_uncompressed.dcm",
        "ExplVR_LitEndNoMeta.dcm",
    ]),
    "pydicom_data-1.0.0-py3-none-any.whl": ("data_store/data/", [
        "RG1_UNCR.dcm", "RG1_UNCI.dcm", "RG1_J2KR.dcm", "RG1_J2KI.dcm",
        "RG3_UNCR.dcm", "RG3_UNCI.dcm", "RG3_J2KR.dcm", "RG3_J2KI.dcm",
        "JPEG-LL.dcm", "JPEG2000_UNC.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm",
        "emri_small.dcm", "emri_small_RLE.dcm", "emri_small_jpeg_ls_lossless.dcm",
        "emri_small_jpeg_2k_lossless.dcm", "emri_small_big_endian.dcm",
        "mlut_18.dcm", "vlut_04.dcm", "MR2_UNCR.dcm", "MR2_UNCI.dcm", "MR2_J2KR.dcm", "MR2_J2KI.dcm", "US1_J2KR.dcm",
        "SC_ybr_full_uncompressed.dcm",
    ]),
}
for wheel, (prefix, names) in wanted.items():
    with zipfile.ZipFile(os.path.join(tmp, wheel)) as z:
        for n in names:
            with z.open(prefix + n) as src, open(os.path.join(dest, n), "wb") as out:
                out.write(src.read())
    lic = [i for i in zipfile.ZipFile(os.path.join(tmp, wheel)).namelist() if i.endswith("LICENSE")]
    if lic:
        with zipfile.ZipFile(os.path.join(tmp, wheel)) as z, open(os.path.join(dest, "LICENSE-" + wheel.split("-")[0]), "wb") as out:
            out.write(z.read(lic[0]))
PY
echo "$version" > "$dest/.complete"
echo "dicom samples: $(ls "$dest" | grep -c '\.dcm$') files in $dest"
