#!/usr/bin/env bash
# Debian packages srcohort's tests and demo need: the independent DICOM judges (dcmtk's dsrdump,
# dicom3tools' dciodvfy, PixelMed's DicomSRValidator), a Java runtime for OpenSearch, dcm2niix
# (the DICOM -> NIfTI converter benchmarks/clinical.py measures the export against), the
# browser the cohort builder's tests drive headless (chromium with its chromedriver), Orthanc
# with its DICOMweb plugin as the Kaapana test platform's PACS, and buildah + debootstrap for
# `make kaapana-images`.
set -euo pipefail
need=()
command -v dsrdump >/dev/null || need+=(dcmtk)
command -v faketime >/dev/null || need+=(faketime)
command -v dciodvfy >/dev/null || need+=(dicom3tools)
command -v dcm2niix >/dev/null || need+=(dcm2niix)
[ -f /usr/share/java/pixelmed.jar ] || need+=(pixelmed-apps)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v go >/dev/null || need+=(golang-go)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
[ -x /usr/sbin/Orthanc ] || need+=(orthanc)
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "system packages: installing ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
