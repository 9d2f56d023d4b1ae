#!/usr/bin/env bash
# Stage this working tree for one call to a lent GPU machine (gpu/README.md), and put it back afterwards.
#
#   bash gpu/stage.sh init [FOLDER]   # the weights folder to continue (default weights/stargan-studio-128)
#   bash gpu/stage.sh pack            # the training data (gpu_carry/gpu_pack.tgz)
#   bash gpu/stage.sh restore         # everything back as git has it
#
# A call sends the tracked files plus `carry` (here gpu_carry/), at most 64 MiB in all. The large tracked files
# that training does not read (weights, judges, images) leave the index for the call; the init folder (39 MB)
# and the data pack (54 MB) take turns in gpu_carry/, the one not sent waiting in gpu_carry.aside/.
set -euo pipefail
cd "$(dirname "$0")/.."
LARGE=(benchmarks/judges weights docs benchmarks/evaluations demo/examples)
ASIDE=gpu_carry.aside

drop_block() { [ ! -f .git/info/exclude ] || sed -i '/^# >>> gpu\/stage.sh$/,/^# <<< gpu\/stage.sh$/d' .git/info/exclude; }
out_of_index() {  # our lines sit in a marked block of the exclude file, so restore takes out only those
  drop_block
  { echo '# >>> gpu/stage.sh'; printf '/%s/\n' "${LARGE[@]}"; echo '/benchmarks/*.png'; echo '# <<< gpu/stage.sh'; } \
    >> .git/info/exclude
  git rm -r --cached -q --ignore-unmatch "${LARGE[@]}" 'benchmarks/*.png'
}

mkdir -p gpu_carry "$ASIDE"
case "${1:-}" in
  init)
    folder=${2:-weights/stargan-studio-128}
    [ -f "$folder/config.json" ] || { echo "no weights folder at $folder" >&2; exit 2; }
    out_of_index
    [ ! -f gpu_carry/gpu_pack.tgz ] || mv gpu_carry/gpu_pack.tgz "$ASIDE/"
    rm -rf gpu_carry/init && mkdir gpu_carry/init
    cp "$folder"/config.json "$folder"/*.safetensors gpu_carry/init/
    ;;
  pack)
    out_of_index
    [ ! -d gpu_carry/init ] || { rm -rf "$ASIDE/init"; mv gpu_carry/init "$ASIDE/"; }
    [ -f gpu_carry/gpu_pack.tgz ] || mv "$ASIDE/gpu_pack.tgz" gpu_carry/ 2>/dev/null \
      || { echo "no gpu_carry/gpu_pack.tgz: build it with gpu/pack_data.py (gpu/README.md)" >&2; exit 2; }
    ;;
  restore)
    git reset -q
    drop_block
    ;;
  *)
    echo "usage: bash gpu/stage.sh init [FOLDER] | pack | restore" >&2; exit 2
    ;;
esac
echo "$(git ls-files -z | du -cb --files0-from=- | tail -n1 | cut -f1) bytes tracked, $(du -sb gpu_carry | cut -f1) in gpu_carry"
