// Package units tests what `make install` puts on a host for systemd: the
// units of dist/systemd, the tmpfiles.d file, and the units `rkt generate
// systemd` writes, each checked by systemd's own tools (systemd-analyze
// verify, systemd-tmpfiles) in a DESTDIR tree.
package units
