#!/usr/bin/env bash
# spank_deepops.so is loaded into every srun, sbatch, salloc, slurmd and
# slurmstepd: it must need no library beyond the C and C++ runtimes (libslurm's
# symbols come from the process that loads it), and show that process only
# the SPANK callbacks and the plugin symbols. Usage: plugin_linkage_test.sh SO
set -euo pipefail
so=$1
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort)
allowed='^(libstdc\+\+\.so\.[0-9]+|libgcc_s\.so\.[0-9]+|libc\.so\.[0-9]+|libm\.so\.[0-9]+|ld-linux[-a-z0-9_.]*\.so\.[0-9]+|libslurm(full)?[-.a-z0-9]*\.so[.0-9]*|libnlohmann[a-z_]*\.so[.0-9]*)$'
extra=$(grep -Ev "$allowed" <<<"$needed" || true)
if [[ -z $extra ]]; then echo "PASS NEEDED: $(tr '\n' ' ' <<<"$needed")"; else
  fail "NEEDED beyond the C/C++ runtime and libslurm: $(tr '\n' ' ' <<<"$extra")"
fi

exported=$(nm -D --defined-only "$so" | awk '{print $3}' | sort)
want=$(printf '%s\n' plugin_name plugin_type plugin_version spank_plugin_version \
  slurm_spank_init slurm_spank_init_post_opt slurm_spank_user_init slurm_spank_task_init \
  slurm_spank_task_exit slurm_spank_exit slurm_spank_job_epilog | sort)
if [[ $exported == "$want" ]]; then echo "PASS exports: the SPANK callbacks and plugin symbols only"
else
  fail "exports differ from the SPANK and plugin symbols: $(diff <(echo "$want") <(echo "$exported") | grep '^[<>]' | head -20 | tr '\n' ' ')"
fi
[[ $failures -eq 0 ]]
