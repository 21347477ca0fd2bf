// make_drafter: every spec of the grammar builds the drafter it names (whose
// name() gives the spec back), and bad specs or missing resources are one
// clear Error.
#include "engine/drafter_factory.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "drafters/model_drafter.h"
#include "drafters/self_drafter.h"
#include "spec/model_files.h"

namespace specula {
namespace {

class DrafterFactoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    RandomModelOptions options;
    options.n_vocab = 16;
    options.n_embd = 16;
    options.n_head = 2;
    options.n_ff = 32;
    options.n_layer = 6;
    options.n_ctx = 64;
    models_ = new testing::ModelPair(testing::make_target_and_derived_draft(*dir_, "f", options));
  }
  static void TearDownTestSuite() {
    delete models_;
    delete dir_;
  }
  static DrafterResources everything() {
    static SuffixCache cache;
    return {models_->target.get(), models_->draft.get(), &cache, 32, nullptr};
  }
  static std::string error_of(const std::string& spec, const DrafterResources& resources) {
    try {
      make_drafter(spec, resources);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  static testing::TempDir* dir_;
  static testing::ModelPair* models_;
};
testing::TempDir* DrafterFactoryTest::dir_ = nullptr;
testing::ModelPair* DrafterFactoryTest::models_ = nullptr;

TEST_F(DrafterFactoryTest, EachSpecBuildsTheDrafterItNames) {
  EXPECT_EQ(make_drafter("lookup", everything())->name(), "lookup");
  EXPECT_EQ(make_drafter("lookup:3", everything())->name(), "lookup");  // 1..3 is the default
  EXPECT_EQ(make_drafter("lookup:5", everything())->name(), "lookup:1-5");
  EXPECT_EQ(make_drafter("lookup:2-4", everything())->name(), "lookup:2-4");
  EXPECT_EQ(make_drafter("suffix", everything())->name(), "suffix");
  EXPECT_EQ(make_drafter("self", everything())->name(), "self:2");  // a quarter of 6, rounded up
  EXPECT_EQ(make_drafter("self:5", everything())->name(), "self:5");
  EXPECT_EQ(make_drafter("self:6", everything())->name(), "self:6");
  const auto model = make_drafter("model", everything());
  EXPECT_NE(dynamic_cast<ModelDrafter*>(model.get()), nullptr);
  // Names round-trip.
  for (const char* spec : {"lookup", "lookup:2-4", "suffix", "self:3"}) {
    EXPECT_EQ(make_drafter(make_drafter(spec, everything())->name(), everything())->name(),
              make_drafter(spec, everything())->name());
  }
}

TEST_F(DrafterFactoryTest, BadSpecsSayWhatToWrite) {
  for (const char* spec : {"", "lookahead", "Lookup", "self:", "self:0", "self:x", "self:2x",
                           "self:-1", "lookup:0", "lookup:3-2", "lookup:1-", "lookup:-3",
                           "lookup:1-65", "suffix:4", "model:1", "self:99999999999"}) {
    const std::string message = error_of(spec, everything());
    EXPECT_FALSE(message.empty()) << "'" << spec << "' was accepted";
  }
  EXPECT_NE(error_of("lookahead", everything()).find(drafter_spec_help()), std::string::npos);
  EXPECT_NE(error_of("self:7", everything()).find("self:6"), std::string::npos);
  EXPECT_NE(error_of("self:x", everything()).find("layer count"), std::string::npos);
}

TEST_F(DrafterFactoryTest, MissingResourcesAreErrors) {
  DrafterResources none;
  EXPECT_NE(error_of("model", none).find("EngineConfig::draft_path"), std::string::npos);
  EXPECT_NE(error_of("suffix", none).find("suffix cache"), std::string::npos);
  EXPECT_NE(error_of("self", none).find("target"), std::string::npos);
  EXPECT_NO_THROW(make_drafter("lookup", none));  // needs nothing
  DrafterResources no_context = everything();
  no_context.n_ctx = 0;
  EXPECT_NE(error_of("self:2", no_context).find("context size"), std::string::npos);
  EXPECT_NE(error_of("model", no_context).find("context size"), std::string::npos);
  // check_drafter_spec does not need n_ctx.
  EXPECT_NO_THROW(check_drafter_spec("self:2", no_context));
  EXPECT_THROW(check_drafter_spec("self:7", no_context), Error);
}

}  // namespace
}  // namespace specula
