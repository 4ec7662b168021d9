# Install.cmake - where `cmake --install` puts pole (included by the top
# CMakeLists.txt; the Debian package of cmake/Package.cmake installs the
# same files under the prefix /usr).
#
# The programs, the manual pages and the documentation follow
# CMAKE_INSTALL_PREFIX through GNUInstallDirs: /usr/sbin/poled,
# /usr/bin/polectl, /usr/share/man/man{1,5,8}, /usr/share/doc/pole for the
# prefix /usr. What systemd and the administrators look for at fixed places
# does not: the configuration (/etc/pole/poled.cfg), the unit
# (/lib/systemd/system/poled.service, where Debian 12's packages put theirs),
# and the sysusers.d and tmpfiles.d entries (/usr/lib/...). Each is a cache
# variable, for another distribution's layout.
#
# The unit names the path of poled and of its configuration: it is written
# at install time, from systemd/poled.service, with the prefix of that
# install (`cmake --install BUILD --prefix /usr` and cpack give /usr/sbin,
# a plain `cmake --install BUILD` the configured prefix), so that the
# ExecStart= of an installed unit always names the poled installed with it.

include(GNUInstallDirs)

# `make install` and cpack install what is built; they do not build it first
# (as `cmake --install` never does). The top Makefile's `make package` builds
# first. Without this, every cpack run (the install_package and
# install_systemd tests among them) rebuilds the whole tree, tests and
# benchmarks included, while other tests may be running its binaries, and
# fails on a target that has nothing to do with the package.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(POLE_CONFDIR "/etc/pole" CACHE PATH
    "Directory of poled.cfg and of the server's CurveZMQ certificate")
set(POLE_SYSTEMD_UNITDIR "/lib/systemd/system" CACHE PATH
    "Directory of systemd system units")
set(POLE_SYSUSERSDIR "/usr/lib/sysusers.d" CACHE PATH
    "Directory of sysusers.d(5) entries")
set(POLE_TMPFILESDIR "/usr/lib/tmpfiles.d" CACHE PATH
    "Directory of tmpfiles.d(5) entries")

install(TARGETS poled RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS polectl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# 0644 root:root as installed; the package's postinst gives it to the group
# pole, 0640, once it may hold SMTP and webhook secrets (packaging/postinst).
install(FILES config/poled.cfg DESTINATION ${POLE_CONFDIR})

# The unit: see above. The script gets its parameters through install(CODE),
# which runs just before it in the same cmake_install.cmake.
install(CODE "
  set(POLE_UNIT_SOURCE \"${PROJECT_SOURCE_DIR}/systemd/poled.service\")
  set(POLE_UNIT_WORKDIR \"${PROJECT_BINARY_DIR}/systemd\")
  set(POLE_UNIT_SBINDIR \"${CMAKE_INSTALL_SBINDIR}\")
  set(POLE_UNIT_CONFDIR \"${POLE_CONFDIR}\")
  set(POLE_UNIT_DESTINATION \"${POLE_SYSTEMD_UNITDIR}\")")
install(SCRIPT ${CMAKE_CURRENT_LIST_DIR}/InstallUnit.cmake)

install(FILES systemd/pole.sysusers DESTINATION ${POLE_SYSUSERSDIR}
        RENAME pole.conf)
install(FILES systemd/pole.tmpfiles DESTINATION ${POLE_TMPFILESDIR}
        RENAME pole.conf)

# Manual pages, compressed as Debian wants them (gzip -9n: no name, no time
# stamp, so that two builds give the same bytes). `man -l man/poled.8`
# reads the sources in the tree.
set(POLE_MAN_PAGES polectl.1 poled.cfg.5 poled.8)
set(pole_man_outputs)
foreach(page ${POLE_MAN_PAGES})
  set(source ${PROJECT_SOURCE_DIR}/man/${page})
  set(output ${PROJECT_BINARY_DIR}/man/${page}.gz)
  add_custom_command(OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
    COMMAND sh -c "gzip -9n -c \"$1\" > \"$2\"" sh ${source} ${output}
    DEPENDS ${source}
    COMMENT "Compressing the manual page ${page}"
    VERBATIM)
  list(APPEND pole_man_outputs ${output})
  string(REGEX MATCH "[0-9]$" section ${page})
  install(FILES ${output} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(man ALL DEPENDS ${pole_man_outputs})

# Documentation: /usr/share/doc/pole (CMAKE_INSTALL_DOCDIR is
# share/doc/${PROJECT_NAME}).
file(GLOB POLE_DOCS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES README.md proto/PROTOCOL.md ${POLE_DOCS}
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES systemd/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR}
        RENAME README.systemd.md)
