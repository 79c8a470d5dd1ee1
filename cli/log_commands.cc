// `jitgate log ...` and `jitgate verify`: the store's command line.
#include "cli/log_commands.h"

#include <pwd.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/bundle.h"
#include "core/base/env.h"
#include "core/base/status_macros.h"
#include "core/base/text.h"
#include "core/crypto/crypto.h"
#include "store/format.h"
#include "store/merkle/merkle.h"
#include "store/merkle/proof.h"
#include "store/merkle/proof_text.h"
#include "store/note/checkpoint.h"
#include "store/note/keys.h"
#include "store/reader.h"
#include "store/store.h"
#include "store/verify.h"

namespace jitgate::cli {

namespace po = boost::program_options;

namespace {

// Parses argv for one subcommand; prints help and returns false on --help.
bool ParseArgs(const std::vector<std::string>& args, po::options_description& desc,
               po::variables_map* vm, const char* usage) {
  desc.add_options()("help,h", "show this help");
  po::store(po::command_line_parser(args).options(desc).run(), *vm);
  if (vm->count("help")) {
    std::cout << "usage: " << usage << "\n" << desc;
    return false;
  }
  po::notify(*vm);
  return true;
}

std::string AbsolutePath(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char buf[4096];
  if (getcwd(buf, sizeof(buf)) == nullptr) return path;
  return JoinPath(buf, path);
}

std::string UserName() {
  uid_t uid = getuid();
  struct passwd pw, *result = nullptr;
  char buf[4096];
  if (getpwuid_r(uid, &pw, buf, sizeof(buf), &result) == 0 && result != nullptr) {
    return result->pw_name;
  }
  return "uid:" + std::to_string(uid);
}

int Fail(const Status& s) {
  std::cerr << "jitgate: " << s.message() << "\n";
  return 1;
}

// A usage error (bad or conflicting options): exit code 2, as for unknown options.
int UsageError(const std::string& message) {
  std::cerr << "jitgate: " << message << "\n";
  return 2;
}

Status WriteStdout(ByteSpan data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(STDOUT_FILENO, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "write to standard output");
    }
    off += size_t(n);
  }
  return OkStatus();
}

StatusOr<note::Verifier> LoadVerifier(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, DefaultEnv()->ReadFileToString(path, 4096));
  std::string_view line = text;
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  StatusOr<note::Verifier> v = note::Verifier::Parse(line);
  if (!v.ok()) return v.status().WithContext("public key " + path);
  return v;
}

int Keygen(const std::vector<std::string>& args) {
  po::options_description desc("jitgate log keygen");
  std::string name, out;
  desc.add_options()("name", po::value(&name)->required(), "key name (the log's origin)")(
      "out", po::value(&out)->required(), "output prefix: writes PREFIX.key and PREFIX.pub");
  po::variables_map vm;
  if (!ParseArgs(args, desc, &vm, "jitgate log keygen --name NAME --out PREFIX")) return 0;
  if (!note::IsValidKeyName(name)) {
    return Fail(InvalidArgumentError("invalid key name '" + name +
                                     "' (no spaces, '+' or control characters)"));
  }
  StatusOr<note::Signer> signer = note::Signer::Generate(name);
  if (!signer.ok()) return Fail(signer.status());
  Env* env = DefaultEnv();
  crypto::SecretBytes skey = signer->EncodeSignerKey();
  Bytes key_text(skey.span().begin(), skey.span().end());
  key_text.push_back('\n');
  crypto::SecretBytes key_secret(key_text);
  crypto::Cleanse(key_text.data(), key_text.size());
  // The private key is created exclusively with mode 0600: never overwrite a key.
  StatusOr<std::unique_ptr<WritableFile>> kf = env->NewExclusiveFile(out + ".key", 0600);
  if (!kf.ok()) return Fail(kf.status().WithContext("refusing to overwrite or create the key"));
  Status s = (*kf)->Append(key_secret.span());
  if (s.ok()) s = (*kf)->Sync();
  if (s.ok()) s = (*kf)->Close();
  if (!s.ok()) return Fail(s);
  std::string pub = signer->VerifierKey() + "\n";
  StatusOr<std::unique_ptr<WritableFile>> pf = env->NewExclusiveFile(out + ".pub", 0644);
  if (!pf.ok()) return Fail(pf.status());
  s = (*pf)->Append(AsBytes(pub));
  if (s.ok()) s = (*pf)->Sync();
  if (s.ok()) s = (*pf)->Close();
  if (s.ok()) s = env->SyncDir(DirName(AbsolutePath(out + ".key")));
  if (!s.ok()) return Fail(s);
  std::cout << "wrote " << out << ".key (private, mode 0600) and " << out << ".pub: "
            << signer->VerifierKey() << "\n";
  return 0;
}

int Init(const std::vector<std::string>& args) {
  po::options_description desc("jitgate log init");
  std::string dir, key;
  desc.add_options()("store", po::value(&dir)->required(), "store directory to create")(
      "key", po::value(&key)->required(), "signing key (PREFIX.key from jitgate log keygen)");
  po::variables_map vm;
  if (!ParseArgs(args, desc, &vm, "jitgate log init --store DIR --key PREFIX.key")) return 0;
  Status s = store::CreateStore(DefaultEnv(), dir, AbsolutePath(key));
  if (!s.ok()) return Fail(s);
  StatusOr<std::unique_ptr<store::StoreReader>> r = store::StoreReader::Open(dir);
  if (!r.ok()) return Fail(r.status());
  std::cout << "created store " << dir << " (origin " << (*r)->identity().origin << ")\n";
  return 0;
}

int Annotate(const std::vector<std::string>& args) {
  po::options_description desc("jitgate log annotate");
  std::string dir, text;
  desc.add_options()("store", po::value(&dir)->required(), "store directory")(
      "text", po::value(&text)->required(), "annotation text");
  po::variables_map vm;
  if (!ParseArgs(args, desc, &vm, "jitgate log annotate --store DIR --text TEXT")) return 0;
  nlohmann::json body = {{"author", UserName()}, {"text", text}};
  std::string encoded;
  try {
    encoded = body.dump();
  } catch (const nlohmann::json::exception&) {
    return Fail(InvalidArgumentError("annotation text is not valid UTF-8"));
  }
  store::StoreOptions opts;
  StatusOr<std::unique_ptr<store::Store>> st = store::Store::Open(dir, opts);
  if (!st.ok()) return Fail(st.status());
  StatusOr<uint64_t> index =
      (*st)->Append(uint8_t(store::EntryType::kAnnotation), AsBytes(encoded));
  if (!index.ok()) return Fail(index.status());
  Status s = (*st)->Close();
  if (!s.ok()) return Fail(s);
  std::cout << "appended annotation as entry " << *index << "\n";
  return 0;
}

int Checkpoint(const std::vector<std::string>& args) {
  po::options_description desc("jitgate log checkpoint");
  std::string dir;
  desc.add_options()("store", po::value(&dir)->required(), "store directory");
  po::variables_map vm;
  if (!ParseArgs(args, desc, &vm, "jitgate log checkpoint --store DIR")) return 0;
  StatusOr<std::unique_ptr<store::StoreReader>> r = store::StoreReader::Open(dir);
  if (!r.ok()) return Fail(r.status());
  if ((*r)->latest_checkpoint().empty()) return Fail(NotFoundError("the store has no checkpoint"));
  Status s = WriteStdout(AsBytes((*r)->latest_checkpoint()));
  return s.ok() ? 0 : Fail(s);
}

std::string FormatTime(int64_t unix_nanos) {
  time_t secs = time_t(unix_nanos / 1'000'000'000);
  long nanos = long(unix_nanos % 1'000'000'000);
  if (nanos < 0) {
    nanos += 1'000'000'000;
    --secs;
  }
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nanos);
  return buf;
}

int Entry(const std::vector<std::string>& args) {
  po::options_description desc("jitgate log entry");
  std::string dir;
  uint64_t index = 0;
  desc.add_options()("store", po::value(&dir)->required(), "store directory")(
      "index", po::value(&index)->required(), "entry index (0-based)")(
      "json", "print the entry as JSON instead of its raw bytes");
  po::variables_map vm;
  if (!ParseArgs(args, desc, &vm, "jitgate log entry --store DIR --index N [--json]")) return 0;
  StatusOr<std::unique_ptr<store::StoreReader>> r = store::StoreReader::Open(dir);
  if (!r.ok()) return Fail(r.status());
  StatusOr<Bytes> raw = (*r)->ReadEntry(index);
  if (!raw.ok()) return Fail(raw.status());
  if (!vm.count("json")) {
    Status s = WriteStdout(*raw);
    return s.ok() ? 0 : Fail(s);
  }
  StatusOr<store::Entry> e = store::ParseEntry(*raw);
  if (!e.ok()) return Fail(e.status().WithContext("entry " + std::to_string(index)));
  nlohmann::json j;
  j["index"] = index;
  j["type"] = store::EntryTypeName(e->type);
  j["time"] = FormatTime(e->time_unix_nanos);
  j["leaf_hash"] = crypto::Base64Encode(merkle::HashLeaf(*raw));
  bool is_json = e->type == uint8_t(store::EntryType::kAuditEvent) ||
                 e->type == uint8_t(store::EntryType::kAnnotation);
  bool done = false;
  if (is_json) {
    nlohmann::json body = nlohmann::json::parse(AsChars(e->body), nullptr, false);
    if (!body.is_discarded()) {
      j["body"] = std::move(body);
      done = true;
    }
  }
  if (!done) j["body_base64"] = crypto::Base64Encode(e->body);
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}

int Prove(const std::vector<std::string>& args) {
  po::options_description desc("jitgate log prove");
  std::string dir;
  uint64_t index = 0, from = 0, size = 0;
  desc.add_options()("store", po::value(&dir)->required(), "store directory")(
      "index", po::value(&index), "inclusion proof of this leaf")(
      "from", po::value(&from), "consistency proof from this tree size")(
      "size", po::value(&size), "tree size (default: the latest checkpoint's)");
  po::variables_map vm;
  if (!ParseArgs(args, desc, &vm,
                 "jitgate log prove --store DIR (--index N | --from M) [--size S]")) {
    return 0;
  }
  if (vm.count("index") == vm.count("from")) {
    return UsageError("give exactly one of --index and --from");
  }
  StatusOr<std::unique_ptr<store::StoreReader>> r = store::StoreReader::Open(dir);
  if (!r.ok()) return Fail(r.status());
  store::StoreReader& reader = **r;
  if (!vm.count("size")) size = reader.latest_checkpoint_size();
  // The proof is checked against the tree before it is printed, so that a
  // damaged index can never produce a proof that we present as valid.
  StatusOr<merkle::Hash> root = reader.RootAt(size);
  if (!root.ok()) return Fail(root.status());
  std::vector<merkle::Hash> proof;
  Status check;
  if (vm.count("index")) {
    StatusOr<std::vector<merkle::Hash>> p = reader.InclusionProof(index, size);
    if (!p.ok()) return Fail(p.status());
    StatusOr<Bytes> entry = reader.ReadEntry(index);
    if (!entry.ok()) return Fail(entry.status());
    merkle::Hash leaf = merkle::HashLeaf(*entry);
    check = merkle::VerifyInclusion(index, size, leaf, merkle::ProofBytes(*p), *root);
    proof = std::move(p).value();
  } else {
    StatusOr<std::vector<merkle::Hash>> p = reader.ConsistencyProof(from, size);
    if (!p.ok()) return Fail(p.status());
    StatusOr<merkle::Hash> root1 = reader.RootAt(from);
    if (!root1.ok()) return Fail(root1.status());
    check = merkle::VerifyConsistency(from, size, merkle::ProofBytes(*p), *root1, *root);
    proof = std::move(p).value();
  }
  if (!check.ok()) {
    return Fail(DataLossError("the tree index produced a proof that does not verify (" +
                              check.message() + "); run jitgate verify"));
  }
  Status s = WriteStdout(AsBytes(merkle::FormatProofText(proof)));
  return s.ok() ? 0 : Fail(s);
}

// `jitgate verify --bundle FILE --key PUB`: offline, no store, no broker.
int VerifyBundleCommand(const std::string& path, const std::string& key_path, bool json) {
  StatusOr<note::Verifier> verifier = LoadVerifier(key_path);
  if (!verifier.ok()) return Fail(verifier.status());
  StatusOr<BundleSummary> sum = VerifyBundleFile(DefaultEnv(), path, *verifier);
  if (json) {
    nlohmann::json j;
    j["ok"] = sum.ok();
    if (!sum.ok()) {
      j["error"] = sum.status().message();
    } else {
      j["session"] = sum->session.id;
      j["user"] = sum->session.user;
      j["login"] = sum->session.login;
      j["target"] = sum->session.target;
      j["chunks"] = sum->items - 2;
      j["entries"] = sum->items;
      j["first_entry"] = sum->first_entry;
      j["last_entry"] = sum->last_entry;
      j["origin"] = sum->origin;
      j["checkpoint_size"] = sum->checkpoint_size;
      j["root"] = crypto::Base64Encode(sum->root);
    }
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else if (sum.ok()) {
    std::cout << EscapeForTerminal(path) << ": OK: " << FormatBundleSummary(*sum) << "\n";
  } else {
    // The message may quote bytes of the (untrusted) bundle.
    std::cerr << "jitgate: " << EscapeForTerminal(path) << ": "
              << EscapeForTerminal(sum.status().message()) << "\n";
  }
  return sum.ok() ? 0 : 1;
}

}  // namespace

int RunLog(const std::vector<std::string>& args) {
  const char* usage =
      "usage: jitgate log COMMAND [options]\n"
      "commands:\n"
      "  keygen --name NAME --out PREFIX        create an Ed25519 log key\n"
      "  init --store DIR --key PREFIX.key      create an empty store\n"
      "  annotate --store DIR --text TEXT       append an operator annotation\n"
      "  checkpoint --store DIR                 print the latest signed checkpoint\n"
      "  entry --store DIR --index N [--json]   print one entry\n"
      "  prove --store DIR --index N [--size M] inclusion proof\n"
      "  prove --store DIR --from M [--size N]  consistency proof\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << usage;
    return args.empty() ? 2 : 0;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  const std::string& cmd = args[0];
  if (cmd == "keygen") return Keygen(rest);
  if (cmd == "init") return Init(rest);
  if (cmd == "annotate") return Annotate(rest);
  if (cmd == "checkpoint") return Checkpoint(rest);
  if (cmd == "entry") return Entry(rest);
  if (cmd == "prove") return Prove(rest);
  std::cerr << "jitgate: unknown command 'log " << cmd << "'\n" << usage;
  return 2;
}

int RunVerify(const std::vector<std::string>& args) {
  po::options_description desc("jitgate verify");
  std::string dir, key, checkpoint, bundle;
  desc.add_options()("store", po::value(&dir), "store directory")(
      "bundle", po::value(&bundle),
      "an evidence bundle (jitgate export --bundle) to verify offline, without the store")(
      "key", po::value(&key)->required(), "the log's public key (PREFIX.pub)")(
      "checkpoint", po::value(&checkpoint),
      "a checkpoint saved earlier: the store must be an append-only extension of it")(
      "json", "print the report as JSON");
  po::variables_map vm;
  if (!ParseArgs(args, desc, &vm,
                 "jitgate verify (--store DIR [--checkpoint FILE] | --bundle FILE) "
                 "--key PREFIX.pub [--json]")) {
    return 0;
  }
  if (vm.count("store") == vm.count("bundle")) {
    return UsageError("give exactly one of --store DIR and --bundle FILE");
  }
  if (vm.count("bundle")) {
    if (vm.count("checkpoint")) {
      return UsageError("--checkpoint goes with --store; a bundle carries its own checkpoint");
    }
    return VerifyBundleCommand(bundle, key, vm.count("json") > 0);
  }
  StatusOr<note::Verifier> verifier = LoadVerifier(key);
  if (!verifier.ok()) return Fail(verifier.status());
  store::VerifyOptions opts;
  if (vm.count("checkpoint")) {
    StatusOr<std::string> text = DefaultEnv()->ReadFileToString(checkpoint, 64 * 1024);
    if (!text.ok()) return Fail(text.status());
    opts.saved_checkpoint = *text;
  }
  store::VerifyReport rep = store::VerifyStore(dir, *verifier, opts);
  if (vm.count("json")) {
    nlohmann::json j;
    j["ok"] = rep.status.ok();
    if (!rep.status.ok()) j["error"] = rep.status.message();
    j["entries"] = rep.entries;
    j["checkpoints"] = rep.checkpoints;
    j["segments"] = rep.segments;
    j["bytes"] = rep.bytes;
    j["latest_checkpoint_size"] = rep.latest_checkpoint_size;
    if (rep.status.ok()) j["root"] = crypto::Base64Encode(rep.root);
    if (rep.saved_checkpoint_size) j["saved_checkpoint_size"] = *rep.saved_checkpoint_size;
    j["torn_tail_bytes"] = rep.torn_tail_bytes;
    j["notes"] = rep.notes;
    std::cout << j.dump() << "\n";
  } else if (rep.status.ok()) {
    std::cout << dir << ": " << rep.Summary() << "\n";
    for (const std::string& n : rep.notes) std::cerr << "jitgate: note: " << n << "\n";
  } else {
    std::cerr << "jitgate: " << dir << ": " << rep.Summary() << "\n";
  }
  return rep.status.ok() ? 0 : 1;
}

}  // namespace jitgate::cli
