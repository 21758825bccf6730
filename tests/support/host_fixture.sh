#!/usr/bin/env bash
# make_host_fixture DIR: a tree standing in for a host with 2 NVIDIA GPUs
# (driver 550.54.15, libcuda, a fake nvidia-smi) and 2 InfiniBand devices
# (uverbs nodes, rdma_cm, sysfs classes), for the native hooks' HOST_ROOT.
# Device nodes are plain files: the hooks only bind them.
make_host_fixture() {
  local fx=$1 i
  mkdir -p "$fx/dev/infiniband" "$fx/proc/driver/nvidia/gpus/0000:07:00.0" \
    "$fx/proc/driver/nvidia/gpus/0000:0f:00.0" "$fx/usr/lib/x86_64-linux-gnu" "$fx/usr/bin" \
    "$fx/sys/class/infiniband" "$fx/sys/class/infiniband_verbs"
  touch "$fx/dev/nvidiactl" "$fx/dev/nvidia-uvm" "$fx/dev/nvidia0" "$fx/dev/nvidia1" \
    "$fx/dev/infiniband/uverbs0" "$fx/dev/infiniband/uverbs1" "$fx/dev/infiniband/rdma_cm"
  echo "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 2024" >"$fx/proc/driver/nvidia/version"
  printf 'GPU UUID: GPU-aaaa\nDevice Minor: 0\n' >"$fx/proc/driver/nvidia/gpus/0000:07:00.0/information"
  printf 'GPU UUID: GPU-bbbb\nDevice Minor: 1\n' >"$fx/proc/driver/nvidia/gpus/0000:0f:00.0/information"
  echo "libcuda 550" >"$fx/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15"
  echo "libnvidia-ml 550" >"$fx/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.15"
  # shellcheck disable=SC2016 # expanded when the fake nvidia-smi runs
  printf '#!/bin/sh\necho "fake nvidia-smi sees GPUs $NVIDIA_VISIBLE_DEVICES"\n' >"$fx/usr/bin/nvidia-smi"
  chmod 0755 "$fx/usr/bin/nvidia-smi"
  for i in 0 1; do
    mkdir -p "$fx/sys/devices/pci/ib$i/infiniband/mlx5_$i" "$fx/sys/devices/pci/ib$i/infiniband_verbs/uverbs$i"
    ln -s "../../../ib$i" "$fx/sys/devices/pci/ib$i/infiniband/mlx5_$i/device"
    ln -s "../../devices/pci/ib$i/infiniband/mlx5_$i" "$fx/sys/class/infiniband/mlx5_$i"
    ln -s "../../devices/pci/ib$i/infiniband_verbs/uverbs$i" "$fx/sys/class/infiniband_verbs/uverbs$i"
  done
}
