# Every dependency comes from Debian 12's packages (see .ci/run); nothing is downloaded.
find_package(PkgConfig REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)
find_package(Threads REQUIRED)
find_package(GTest REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(nlohmann_json 3.10 REQUIRED)
pkg_check_modules(YAML REQUIRED IMPORTED_TARGET yaml-0.1)
pkg_check_modules(ISAL REQUIRED IMPORTED_TARGET libisal)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(LIBSSH REQUIRED IMPORTED_TARGET libssh>=0.10)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd>=0.9.75)
# sd_notify readiness and structured journal fields for jitgated.
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
find_package(SQLite3 REQUIRED)
include(GoogleTest)

# Shared test vectors live beside the repository (../shared/testdata) unless overridden.
set(JITGATE_TESTDATA "${CMAKE_CURRENT_SOURCE_DIR}/../shared/testdata" CACHE PATH
    "Directory holding the shared public test vectors")
