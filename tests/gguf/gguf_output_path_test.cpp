// Where GgufWriter::write may write (issue 15): never over a device, a
// folder or a pipe; through a symlink to the file it names, as cp does; and
// check_output_path says so before any long work starts.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/error.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "gguf_test_util.h"

namespace specula {
namespace {

namespace fs = std::filesystem;

// A fresh folder under the system temporary directory, removed afterwards.
class OutputFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gguf-out-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string at(const std::string& name) const { return (dir_ / name).string(); }

  static GgufWriter small_writer() {
    GgufWriter writer;
    writer.set_string("general.name", "output-path-test");
    return writer;
  }
  static std::string error_of(const std::string& path) {
    try {
      check_output_path(path);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(OutputFolder, ADeviceIsRefusedAndLeftAlone) {
  ASSERT_TRUE(fs::is_character_file("/dev/null"));
  EXPECT_NE(error_of("/dev/null").find("is a device"), std::string::npos) << error_of("/dev/null");
  EXPECT_THROW(small_writer().write("/dev/null"), Error);
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

TEST_F(OutputFolder, AFolderOrAPipeIsRefused) {
  EXPECT_NE(error_of(dir_.string()).find("is a folder"), std::string::npos);
  const std::string pipe = at("pipe");
  ASSERT_EQ(::mkfifo(pipe.c_str(), 0600), 0);
  EXPECT_NE(error_of(pipe).find("is a pipe"), std::string::npos);
  EXPECT_THROW(small_writer().write(pipe), Error);
  EXPECT_TRUE(fs::is_fifo(pipe));
}

TEST_F(OutputFolder, AMissingFolderIsNamed) {
  const std::string message = error_of(at("missing/model.gguf"));
  EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
}

TEST_F(OutputFolder, ANewOrExistingFileIsFine) {
  EXPECT_EQ(error_of(at("new.gguf")), "");
  small_writer().write(at("new.gguf"));
  EXPECT_EQ(error_of(at("new.gguf")), "");
  small_writer().write(at("new.gguf"));  // replaced
  EXPECT_TRUE(fs::is_regular_file(at("new.gguf")));
}

TEST_F(OutputFolder, ASymlinkIsWrittenThrough) {
  // A relative link to a file not there yet, then replacing that file.
  fs::create_symlink("target.gguf", at("link.gguf"));
  small_writer().write(at("link.gguf"));
  EXPECT_TRUE(fs::is_symlink(at("link.gguf")));
  ASSERT_TRUE(fs::is_regular_file(at("target.gguf")));
  const auto first_size = fs::file_size(at("target.gguf"));
  GgufWriter bigger = small_writer();
  bigger.set_string("general.description", std::string(1000, 'x'));
  bigger.write(at("link.gguf"));
  EXPECT_TRUE(fs::is_symlink(at("link.gguf")));
  EXPECT_GT(fs::file_size(at("target.gguf")), first_size);
  EXPECT_EQ(GgufReader::open(at("link.gguf"))->get_string("general.description").value_or(""),
            std::string(1000, 'x'));
}

TEST_F(OutputFolder, ASymlinkToADeviceIsRefused) {
  fs::create_symlink("/dev/null", at("null-link"));
  EXPECT_NE(error_of(at("null-link")).find("is a device"), std::string::npos);
}

}  // namespace
}  // namespace specula
