# Package.cmake - the Debian package of pole, built by CPack (included by
# the top CMakeLists.txt, after cmake/Install.cmake).
#
#   make package          (top Makefile)  -> build/pole_0.1.0_amd64.deb
#   cd BUILD && cpack -G DEB              -> BUILD/pole_VERSION_ARCH.deb
#
# The package holds what cmake/Install.cmake installs, under the prefix /usr
# whatever the build tree was configured with: /usr/sbin/poled,
# /usr/bin/polectl, /etc/pole/poled.cfg (a conffile),
# /lib/systemd/system/poled.service, /usr/lib/sysusers.d/pole.conf,
# /usr/lib/tmpfiles.d/pole.conf, the manual pages and /usr/share/doc/pole.
# Its maintainer scripts are packaging/postinst, prerm and postrm; what they
# do, and what a purge keeps, is in systemd/README.md.

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pole)
set(CPACK_PACKAGE_VENDOR "the pole developers")
set(CPACK_PACKAGE_CONTACT "the pole developers <pole@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "workflow daemon for the dossiers of Brittany's ESS development hubs")
# The long description of the control file: one space before each line, a
# lone "." for an empty line (deb-control(5)).
set(CPACK_PACKAGE_DESCRIPTION
    "poled keeps one durable state machine per dossier of the Région Bretagne's
programme for ESS development hubs (pôles de développement de l'économie
sociale et solidaire): study, validation, creation of the pole, funded
posts. It stores the event log in SQLite, serves the POLE/1 protocol over
ZeroMQ (CurveZMQ authentication, roles), refuses what the programme's rules
forbid, keeps the programme's calendar and notifies coordinators by e-mail,
webhook or command.
.
polectl is its command-line client. The package runs poled as a systemd
service (poled.service) under the system user pole.")

# /usr, not the configured CMAKE_INSTALL_PREFIX (/usr/local by default).
# With DESTDIR (CPACK_SET_DESTDIR) the absolute destinations (/etc/pole,
# /lib/systemd/system, /usr/lib/...) land in the package, not on this
# machine, and the unit's ExecStart= is written with /usr/sbin
# (cmake/InstallUnit.cmake reads the install-time prefix).
# (CPACK_INSTALL_PREFIX is the prefix of the install that CPack runs when it
# sets DESTDIR; CPACK_PACKAGING_INSTALL_PREFIX the one the DEB generator
# records: both /usr.)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
# The binaries of a RelWithDebInfo build carry their debugging information:
# the package ships them stripped.
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)        # pole_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The shared libraries poled and polectl link (libzmq5, libczmq4,
# libsqlite3-0, libconfig9, libjansson4, libcurl4, libsodium23, libc6...)
# are found by dpkg-shlibdeps (package dpkg-dev) with their minimum
# versions; adduser creates the user pole where systemd-sysusers is missing.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "systemd")

# conffiles: dpkg keeps an administrator's changes to these files across
# upgrades, and removes them only on purge. Written here from POLE_CONFDIR.
file(WRITE ${PROJECT_BINARY_DIR}/packaging/conffiles
     "${POLE_CONFDIR}/poled.cfg\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/postinst
    ${PROJECT_SOURCE_DIR}/packaging/prerm
    ${PROJECT_SOURCE_DIR}/packaging/postrm
    ${PROJECT_BINARY_DIR}/packaging/conffiles)
# Maintainer scripts 0755, conffiles 0644, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
