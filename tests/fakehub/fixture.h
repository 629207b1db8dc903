// Fixture: the TOML description of the fake Hub's repositories, and its
// loader. The format is documented in tests/fakehub/README.md ("Fixture
// format"); tests/fakehub/fixture.toml is the default fixture.
//
// Loading is strict: an unknown key, a wrong type, a missing field, a bad
// path or a ref to an unknown commit fails with an exception whose message
// names the source, the line and the problem, so a typo in a test fixture is
// found at once. Loading also hashes every file (generated content once per
// (seed, size) per process), which takes about a second per GiB.
//
// Thread safety: the functions are reentrant; the result is a Model (see
// model.h for its rules).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "tests/fakehub/model.h"

namespace hubcache::fakehub {

// Parses `text`; `source` names it in error messages (a path or
// "<fixture_text>"). Throws std::runtime_error on any problem.
std::unique_ptr<Model> LoadFixture(std::string_view text, const std::string& source);

// Reads and parses the file at `path`. Throws std::runtime_error if it cannot
// be read or is not a valid fixture.
std::unique_ptr<Model> LoadFixtureFile(const std::string& path);

// Path of the fixture shipped with the sources (tests/fakehub/fixture.toml).
std::string DefaultFixturePath();

}  // namespace hubcache::fakehub
