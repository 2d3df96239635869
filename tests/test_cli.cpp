// The `tern` command line run as a user would: output formats, the bundled model, and one-line
// errors with a non-zero exit for misuse and bad files.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <algorithm>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace {

const std::string kModels = std::string(TERN_SHARED_DIR) + "/models/";

struct Result {
  int code;
  std::string out, err;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs `tern ARGS` through the shell with stdout and stderr captured; `env` is prepended
// (e.g. "TERN_ISA=avx2").
Result tern(const std::string& args, const std::string& env = "") {
  const auto dir = std::filesystem::temp_directory_path();
  const auto out = dir / ("tern_cli_out_" + std::to_string(::getpid()));
  const auto err = dir / ("tern_cli_err_" + std::to_string(::getpid()));
  const std::string cmd = env + " " + std::string(TERN_BINARY) + " " + args + " >" + out.string() +
                          " 2>" + err.string() + " </dev/null";
  const int status = std::system(cmd.c_str());
  Result r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

// The ISAs `tern info --cpu` says this machine supports ("isa supported: scalar avx2 ...").
std::vector<std::string> supported_isas() {
  const Result r = tern("info --cpu");
  std::istringstream lines(r.out);
  std::vector<std::string> out;
  for (std::string line; std::getline(lines, line);) {
    const std::string key = "isa supported: ";
    if (line.rfind(key, 0) != 0) continue;
    std::istringstream words(line.substr(key.size()));
    for (std::string w; words >> w;) out.push_back(w);
  }
  return out;
}

size_t count_lines(const std::string& s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

nlohmann::json reference(const std::string& model) {
  std::ifstream f(kModels + "reference/generate.json");
  for (auto& r : nlohmann::json::parse(f)) {
    if (r["model"] == model) return r;
  }
  FAIL("no reference for " << model);
  return {};
}

}  // namespace

TEST_CASE("generate --json gives llama.cpp's greedy ids and the same text as streaming", "[cli]") {
  const auto ref = reference("stories260K-Q8_0.gguf");
  const std::string common =
      "-m " + kModels +
      "stories260K-Q8_0.gguf -p 'Once upon a time' --temp 0 --ignore-eos -n 32 -t 1";
  const Result j = tern("generate " + common + " --json");
  REQUIRE(j.code == 0);
  const auto doc = nlohmann::json::parse(j.out);
  CHECK(doc["prompt_tokens"] == ref["prompt_ids"]);
  const auto want = ref["generated_ids"].get<std::vector<int>>();
  CHECK(doc["tokens"].get<std::vector<int>>() == std::vector<int>(want.begin(), want.begin() + 32));
  CHECK(doc["timings"]["predicted_n"] == 32);

  const Result s = tern("generate " + common);
  REQUIRE(s.code == 0);
  CHECK(s.out == doc["text"].get<std::string>() + "\n");
  CHECK_THAT(s.err, Catch::Contains("tok/s"));  // the timing line goes to stderr
}

TEST_CASE("a prompt file, --mmap and --no-mmap give the same tokens as -p by default", "[cli]") {
  const auto prompt_file =
      std::filesystem::temp_directory_path() / ("tern_cli_prompt_" + std::to_string(::getpid()));
  std::ofstream(prompt_file) << "Once upon a time";
  const std::string m =
      "-m " + kModels + "tiny-ternary-random-TQ1_0.gguf --temp 0 --ignore-eos -n 16 -t 1 --json";
  const Result a = tern("generate " + m + " -p 'Once upon a time'");
  const Result b = tern("generate " + m + " -f " + prompt_file.string() + " --no-mmap");
  const Result c = tern("generate " + m + " -f " + prompt_file.string() + " --mmap");
  std::filesystem::remove(prompt_file);
  REQUIRE(a.code == 0);
  REQUIRE(b.code == 0);
  REQUIRE(c.code == 0);
  CHECK(nlohmann::json::parse(a.out)["tokens"] == nlohmann::json::parse(b.out)["tokens"]);
  CHECK(nlohmann::json::parse(a.out)["tokens"] == nlohmann::json::parse(c.out)["tokens"]);
}

TEST_CASE("the flags --mmap and --no-mmap together are a usage error", "[cli]") {
  for (const char* cmd :
       {"generate -p hi -n 1 --mmap --no-mmap", "bench -m x.gguf -p 1 -n 0 --no-mmap --mmap"}) {
    const Result r = tern(cmd);
    CHECK(r.code != 0);
    CHECK_THAT(r.err, Catch::Contains("excludes"));
  }
}

TEST_CASE("generate without -m runs the bundled model", "[cli]") {
  const Result r = tern("generate -p 'Once upon a time' -n 8 --temp 0");
  REQUIRE(r.code == 0);
  CHECK(r.out.size() > 8);
}

TEST_CASE("the same seed gives the same sampled text", "[cli]") {
  const std::string args =
      "generate -m " + kModels + "stories260K-F16.gguf -p 'Lily' -n 24 --temp 0.9 -s 1234";
  const Result a = tern(args), b = tern(args);
  REQUIRE(a.code == 0);
  CHECK(a.out == b.out);
}

TEST_CASE("tokenize prints ids like llama-tokenize", "[cli]") {
  const Result r =
      tern("tokenize -m " + kModels + "vocab/ggml-vocab-llama-spm.gguf -p 'Hello world' --ids");
  REQUIRE(r.code == 0);
  CHECK(r.out == "[1, 15043, 3186]\n");
  const Result nb = tern("tokenize -m " + kModels +
                         "vocab/ggml-vocab-llama-spm.gguf -p 'Hello world' --ids --no-bos");
  CHECK(nb.out == "[15043, 3186]\n");
}

TEST_CASE("bench reports llama-bench's fields for pp and tg", "[cli]") {
  const Result r =
      tern("bench -m " + kModels + "stories260K-Q8_0.gguf -p 8 -n 4 -r 2 -t 1 -o json");
  REQUIRE(r.code == 0);
  const auto doc = nlohmann::json::parse(r.out);
  REQUIRE(doc.size() == 2);
  CHECK(doc[0]["n_prompt"] == 8);
  CHECK(doc[1]["n_gen"] == 4);
  for (const auto& t : doc) {
    CHECK(t["avg_ts"].get<double>() > 0.0);
    CHECK(t["samples_ns"].size() == 2);
    CHECK(t["n_threads"] == 1);
  }
  CHECK(tern("bench -m " + kModels + "stories260K-Q8_0.gguf -o xml").code == 2);
}

TEST_CASE("synth writes a model that loads and generates, and the seed fixes the bytes", "[cli]") {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string a = (dir / ("tern_synth_a_" + std::to_string(::getpid()) + ".gguf")).string();
  const std::string b = (dir / ("tern_synth_b_" + std::to_string(::getpid()) + ".gguf")).string();
  REQUIRE(tern("synth " + a + " --shape tiny --type tq1_0 -s 7").code == 0);
  REQUIRE(tern("synth " + b + " --shape tiny --type tq1_0 -s 7").code == 0);
  CHECK(slurp(a) == slurp(b));
  const Result info = tern("info -m " + a);
  CHECK_THAT(info.out, Catch::Contains("blk.1.ffn_down.weight"));
  CHECK_THAT(info.out, Catch::Contains("tq1_0"));
  const Result gen = tern("generate -m " + a + " -p hello -n 8 --temp 0 --ignore-eos -t 1 --json");
  REQUIRE(gen.code == 0);
  CHECK(nlohmann::json::parse(gen.out)["tokens"].size() == 8);
  CHECK(tern("synth " + a + " --shape huge").code == 2);
  CHECK(tern("synth " + a + " --type q9_9").code == 2);
  std::filesystem::remove(a);
  std::filesystem::remove(b);
}

TEST_CASE("info prints metadata and the tensor table", "[cli]") {
  const Result r = tern("info -m " + kModels + "tiny-ternary-random-TQ1_0.gguf");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("general.architecture"));
  CHECK_THAT(r.out, Catch::Contains("blk.0.attn_q.weight"));
  CHECK_THAT(r.out, Catch::Contains("tq1_0"));
}

TEST_CASE("misuse and bad files give a one-line error and a non-zero exit", "[cli]") {
  const std::string m = "-m " + kModels + "stories260K-F32.gguf";
  struct Case {
    std::string args;
    std::string fragment;
  };
  const std::vector<Case> cases{
      {"generate " + m, "-p"},                          // no prompt
      {"generate " + m + " -p hi --bogus", "bogus"},    // unknown option
      {"generate " + m + " -p hi -n abc", "-n"},        // not a number
      {"generate " + m + " -p hi -t 0", "-t"},          // out of range
      {"generate " + m + " -p hi --top-p 2", "top-p"},  // out of range
      {"generate -m /nonexistent/model.gguf -p hi", "/nonexistent/model.gguf"},
      {"generate -m " + std::string(TERN_SOURCE_DIR) + "/CMakeLists.txt -p hi", "not a GGUF file"},
      {"info -m " + kModels + "README.md", "not a GGUF file"},
      {"nosuchcommand", "nosuchcommand"},
      {"", "subcommand"},
  };
  for (const auto& c : cases) {
    INFO("tern " << c.args);
    const Result r = tern(c.args);
    CHECK(r.code != 0);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::Contains(c.fragment));
    CHECK(count_lines(r.err) <= 2);  // the error, and at most a usage line
    CHECK_THAT(r.err, !Catch::Contains("terminate called"));
  }
}

TEST_CASE("a context overflow during generation is a clear error", "[cli]") {
  const Result r =
      tern("generate -m " + kModels + "stories260K-F32.gguf -p 'Once upon a time' -c 4 -n 4");
  CHECK(r.code != 0);
  CHECK_THAT(r.err, Catch::Contains("context"));
}

TEST_CASE("every supported ISA gives llama.cpp's greedy ids on the ternary models", "[cli][isa]") {
  for (const char* model : {"tiny-ternary-random-TQ1_0.gguf", "tiny-ternary-random-TQ2_0.gguf"}) {
    const auto ref = reference(model);
    const auto want = ref["generated_ids"].get<std::vector<int>>();
    const auto isas = supported_isas();
    REQUIRE(!isas.empty());
    for (const std::string& name : isas) {
      INFO(model << " with TERN_ISA=" << name);
      const Result r = tern("generate -m " + kModels + model +
                                " -p 'Once upon a time' --temp 0 --ignore-eos -n " +
                                std::to_string(want.size()) + " -t 2 --json",
                            "TERN_ISA=" + name);
      REQUIRE(r.code == 0);
      const auto doc = nlohmann::json::parse(r.out);
      CHECK(doc["prompt_tokens"] == ref["prompt_ids"]);
      CHECK(doc["tokens"].get<std::vector<int>>() == want);
    }
  }
}

TEST_CASE("info --cpu names the chosen ISA and each type's kernel, and TERN_ISA overrides",
          "[cli][isa]") {
  const Result r = tern("info --cpu");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("isa supported: scalar"));
  CHECK_THAT(r.out, Catch::Contains("matmul_tq2_0_q8_K__"));
  const Result s = tern("info --cpu", "TERN_ISA=scalar");
  REQUIRE(s.code == 0);
  CHECK_THAT(s.out, Catch::Contains("isa chosen: scalar (TERN_ISA)"));
  CHECK_THAT(s.out, Catch::Contains("matmul_tq2_0_q8_K__scalar"));
}

TEST_CASE("an unknown or unsupported TERN_ISA is a one-line error", "[cli][isa]") {
  const std::string gen = "generate -m " + kModels + "tiny-ternary-random-TQ2_0.gguf -p hi -n 1";
  for (const std::string isa : {"avx9", "neon", "AVX2"}) {
    INFO("TERN_ISA=" << isa);
    const auto isas = supported_isas();
    if (std::find(isas.begin(), isas.end(), isa) != isas.end()) continue;
    for (const std::string& args : {gen, std::string("info --cpu")}) {
      const Result r = tern(args, "TERN_ISA=" + isa);
      CHECK(r.code != 0);
      CHECK_THAT(r.err, Catch::Contains("TERN_ISA=" + isa));
      CHECK(count_lines(r.err) == 1);
    }
  }
}
