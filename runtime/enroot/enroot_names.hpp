#pragma once

#include <string>
#include <string_view>

#include "config/mount_spec.hpp"
#include "util/env_lookup.hpp"

// The names Enroot gives things by default, and its argument forms, as
// deepops-enroot reproduces them.
namespace deepops::enroot {

// `enroot import URI`'s default output: "nvidia+pytorch+25.01-py3.sqsh" for
// docker://nvcr.io#nvidia/pytorch:25.01-py3 ('/' as '+', then "+TAG",
// Docker Hub's "library/" left out, "latest" when no tag is given);
// "ubuntu+22.04.sqsh" for dockerd://ubuntu:22.04 (every '/' and ':' as '+').
// Throws invalid_argument for a URI Enroot would not take ("Invalid argument").
std::string default_image_file(std::string_view uri);

// `enroot create IMAGE`'s default container name: the file's name less ".sqsh".
std::string default_container_name(std::string_view image_path);

// The schemes `enroot import` takes (docker://, dockerd://, podman://), and
// the archive forms this runtime adds (docker-archive:, oci-archive:, oci:).
bool is_import_uri(std::string_view uri);

// `start -m SRC:DST[:TYPE[:OPTIONS]]`: an fstab line with ':' between its
// fields (Enroot's form), not Pyxis's SRC:DST:FLAGS. A relative source is
// taken from `cwd`.
MountEntry parse_enroot_mount(std::string_view arg, const std::string& cwd, const EnvLookup& env);

// `-e KEY[=VAL]`: a name Enroot accepts ([A-Za-z_][A-Za-z0-9_]*).
bool is_valid_env_argument(std::string_view arg);

}  // namespace deepops::enroot
