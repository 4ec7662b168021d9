# InstallUnit.cmake - run by `cmake --install` (install(SCRIPT) in
# cmake/Install.cmake): writes poled.service with the paths of this install
# and installs it into POLE_UNIT_DESTINATION.
#
# systemd/poled.service names /usr/sbin/poled and /etc/pole/poled.cfg, the
# paths of the Debian package; another prefix or configuration directory
# replaces them. CMAKE_INSTALL_PREFIX is the one of this install (--prefix,
# or cpack's CPACK_PACKAGING_INSTALL_PREFIX), not necessarily the configured
# one. file(INSTALL) adds $DESTDIR itself and records the file in
# install_manifest.txt.

if(IS_ABSOLUTE "${POLE_UNIT_SBINDIR}")
  set(sbindir "${POLE_UNIT_SBINDIR}")
else()
  set(sbindir "${CMAKE_INSTALL_PREFIX}/${POLE_UNIT_SBINDIR}")
endif()

file(READ "${POLE_UNIT_SOURCE}" unit)
string(REPLACE "ExecStart=/usr/sbin/poled " "ExecStart=${sbindir}/poled "
       unit "${unit}")
string(REPLACE " -c /etc/pole/poled.cfg" " -c ${POLE_UNIT_CONFDIR}/poled.cfg"
       unit "${unit}")

# Two installs may run at once from one build tree (ctest -j): each writes
# its own copy.
string(RANDOM LENGTH 12 token)
set(generated "${POLE_UNIT_WORKDIR}/${token}/poled.service")
file(WRITE "${generated}" "${unit}")
file(INSTALL DESTINATION "${POLE_UNIT_DESTINATION}" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${generated}")
file(REMOVE_RECURSE "${POLE_UNIT_WORKDIR}/${token}")
