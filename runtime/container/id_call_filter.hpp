#pragma once

namespace deepops {

// Installs, in the calling thread, the seccomp filter that Enroot and Pyxis
// give every container process: setuid, setgid, setgroups, setres*id, the
// setfs*id calls (unless they only query) and the chown family return
// success without doing anything. A user namespace of one mapping cannot
// hold the ids that apt, dpkg and pip switch to (`_apt`, `nobody`), and
// these tools stop at the first refused call; pretending they worked lets
// them go on as the one user the namespace has. It grants nothing: the
// calls are skipped, never performed. Process ids, file owners and every
// other check stay what the kernel says.
//
// The caller must hold CAP_SYS_ADMIN in its user namespace (a process that
// created or joined it does) or have set no_new_privs. Throws deepops::Error.
void install_id_call_filter();

}  // namespace deepops
