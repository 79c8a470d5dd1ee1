#include "cli/replay.h"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/base/status_macros.h"
#include "core/base/text.h"
#include "core/config/reader.h"

namespace jitgate::cli {

namespace {

constexpr uint8_t kEsc = 0x1b;
constexpr uint8_t kBel = 0x07;
constexpr uint8_t kEnq = 0x05;  // makes the terminal send its answerback message
constexpr uint8_t kCan = 0x18;  // CAN and SUB abort a sequence
constexpr uint8_t kSub = 0x1a;
constexpr char kReplacement[] = "\xef\xbf\xbd";  // U+FFFD

bool In(char c, std::string_view set) { return set.find(c) != std::string_view::npos; }

// ESC Fs/Fp finals (no intermediates) that only move the cursor, switch
// keypad modes, shift character sets or reset the terminal to its own
// defaults: DECSC DECRC DECKPAM DECKPNM IND NEL HTS RI SS2 SS3 RIS LS2 LS3
// LS3R LS2R LS1R DECBI DECFI and xterm's cursor-to-lower-left. Notably absent:
// ESC Z (DECID, the terminal answers) and a lone ST (ESC \, which only ends
// strings, and all strings are dropped).
constexpr std::string_view kEscFinals = "78=>DEHMNOcno|}~69F";
// ESC with intermediates: charset designation (ESC ( B, ...) and ESC # n
// (DECALN, double-width lines). Absent: ESC SP (7/8-bit controls and
// conformance) and ESC % (leaving UTF-8).
constexpr std::string_view kEscIntermediates = "()*+-./#";

// CSI finals with no private prefix and no intermediate that only draw:
// ICH CUU CUD CUF CUB CNL CPL CHA CUP CHT ED EL IL DL DCH SU ECH CBT HPA HPR
// REP VPA VPR HVP TBC HPB VPB SGR DECSTBM SCOSC/DECSLRM SCORC. SD ('T') is
// added when it has at most one parameter (five make it xterm's mouse
// highlight tracking); SM/RM ('h', 'l') go through FilterModes.
constexpr std::string_view kCsiFinals = "@ABCDEFGHIJKLMPSXZ`abdefgjkmrsu";

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// DEC private modes that must not reach the auditor's terminal: they make it
// report the mouse, focus, colour-scheme changes or resizes as input (which
// would be typed into the auditor's shell), or resize the window.
bool IsForbiddenDecMode(long mode) {
  return mode == 3 ||                       // DECCOLM: 80/132 columns, resizes the window
         mode == 9 ||                       // X10 mouse
         (mode >= 1000 && mode <= 1006) ||  // mouse tracking, focus events, encodings
         mode == 1015 || mode == 1016 ||    // urxvt and SGR-pixel mouse encodings
         mode == 2031 ||                    // colour-scheme change reports
         mode == 2048;                      // in-band resize reports
}

// ANSI modes that only change how text is drawn: IRM (insert) and LNM
// (newline). Others (KAM locks the keyboard, SRM turns on local echo) go.
bool IsAllowedAnsiMode(long mode) { return mode == 4 || mode == 20; }

}  // namespace

// --- UTF-8 -------------------------------------------------------------------

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(char(cp));
  } else if (cp < 0x800) {
    out->push_back(char(0xc0 | (cp >> 6)));
    out->push_back(char(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(char(0xe0 | (cp >> 12)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(char(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(char(0xf0 | (cp >> 18)));
    out->push_back(char(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(char(0x80 | (cp & 0x3f)));
  }
}

void Utf8TextDecoder::Reset() {
  cp_ = 0;
  needed_ = seen_ = 0;
  lower_ = 0x80;
  upper_ = 0xbf;
}

// The WHATWG Encoding Standard's UTF-8 decoder, step by step. The narrowed
// bounds after E0, ED, F0 and F4 reject overlong forms, surrogates and values
// above U+10FFFF at the second byte, which is what makes each maximal invalid
// subsequence exactly one U+FFFD.
Utf8TextDecoder::Step Utf8TextDecoder::Feed(uint8_t b, uint32_t* cp) {
  if (needed_ == 0) {
    if (b < 0x80) {
      *cp = b;
      return Step::kChar;
    }
    if (b >= 0xc2 && b <= 0xdf) {
      needed_ = 1;
      cp_ = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
      if (b == 0xe0) lower_ = 0xa0;
      if (b == 0xed) upper_ = 0x9f;
      needed_ = 2;
      cp_ = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      if (b == 0xf0) lower_ = 0x90;
      if (b == 0xf4) upper_ = 0x8f;
      needed_ = 3;
      cp_ = b & 0x07;
    } else {
      return Step::kError;
    }
    return Step::kMore;
  }
  if (b < lower_ || b > upper_) {
    Reset();
    return Step::kErrorAgain;
  }
  lower_ = 0x80;
  upper_ = 0xbf;
  cp_ = (cp_ << 6) | (b & 0x3f);
  if (++seen_ < needed_) return Step::kMore;
  *cp = cp_;
  Reset();
  return Step::kChar;
}

void Utf8TextDecoder::Decode(ByteSpan data, std::string* out) {
  out->reserve(out->size() + data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    uint8_t b = data[i];
    if (b < 0x80 && needed_ == 0) {
      out->push_back(char(b));
      continue;
    }
    uint32_t cp;
    for (;;) {
      Step s = Feed(b, &cp);
      if (s == Step::kChar) AppendUtf8(cp, out);
      if (s == Step::kError || s == Step::kErrorAgain) out->append(kReplacement);
      if (s != Step::kErrorAgain) break;
    }
  }
}

void Utf8TextDecoder::Finish(std::string* out) {
  if (needed_ != 0) out->append(kReplacement);
  Reset();
}

// --- SafeFilter --------------------------------------------------------------

void SafeFilter::Write(ByteSpan data, std::string* out) {
  for (uint8_t b : data) {
    // Step consumes b in at most two states (a state change then a retry),
    // and a retry always happens in a state that consumes it.
    while (Step(b, out)) {
    }
  }
}

void SafeFilter::Finish(std::string* out) {
  if (state_ != State::kGround) Drop();
  state_ = State::kGround;
  utf8_.Finish(out);
}

std::string SafeFilter::Epilogue() const {
  std::string out = alternate_screen_ ? "\x1b[?1049l" : "";
  // DECSTBM homes the cursor: save and restore around it.
  out += "\0337\033[r\0338";
  out += "\x1b[0m\x1b(B\x0f\x1b[4l\x1b[?7h\x1b[?1l\x1b>\x1b[?5l\x1b[?2004l\x1b[0 q\x1b[?25h";
  return out;
}

void SafeFilter::Drop() {
  ++dropped_;
  seq_.clear();
  string_len_ = 0;
}

bool SafeFilter::Append(uint8_t b) {
  if (seq_.size() >= kMaxSequence) {
    Drop();
    state_ = State::kGround;
    return false;
  }
  seq_.push_back(char(b));
  return true;
}

bool SafeFilter::Ground(uint8_t b, std::string* out) {
  if (b >= 0x80 || utf8_.pending()) {
    uint32_t cp;
    switch (utf8_.Feed(b, &cp)) {
      case Utf8TextDecoder::Step::kMore:
        return false;
      case Utf8TextDecoder::Step::kChar:
        // C1 controls (CSI, OSC, DCS, ... as single characters) are acted on
        // by some terminals even in UTF-8; no program needs them there.
        if (cp >= 0x80 && cp <= 0x9f) {
          ++dropped_;
        } else {
          AppendUtf8(cp, out);
        }
        return false;
      case Utf8TextDecoder::Step::kError:
        out->append(kReplacement);
        return false;
      case Utf8TextDecoder::Step::kErrorAgain:
        out->append(kReplacement);
        return true;
    }
  }
  if (b == kEsc) {
    seq_.assign(1, char(kEsc));
    state_ = State::kEscape;
  } else if (b == kEnq) {
    ++dropped_;
  } else {
    out->push_back(char(b));  // text, DEL, and C0 controls other than ENQ
  }
  return false;
}

bool SafeFilter::Step(uint8_t b, std::string* out) {
  switch (state_) {
    case State::kGround:
      return Ground(b, out);

    case State::kEscape:
    case State::kCsi: {
      // As in a terminal's parser (vt100.net's DEC ANSI parser): ESC restarts,
      // CAN and SUB abort, other C0 controls are executed in the middle of the
      // sequence (so they can be written before it), DEL is ignored.
      if (b == kEsc) {
        Drop();
        seq_.assign(1, char(kEsc));
        state_ = State::kEscape;
        return false;
      }
      if (b == kCan || b == kSub) {
        Drop();
        out->push_back(char(b));
        state_ = State::kGround;
        return false;
      }
      if (b == kEnq) {
        ++dropped_;
        return false;
      }
      if (b < 0x20) {
        out->push_back(char(b));
        return false;
      }
      if (b == 0x7f) return false;
      if (b >= 0x80) {
        // Not part of any 7-bit sequence: abandon it and show the byte as text.
        Drop();
        state_ = State::kGround;
        return true;
      }
      if (state_ == State::kCsi) {
        if (b < 0x40) return !Append(b);  // parameter or intermediate
        if (!Append(b)) return true;
        EndCsi(out);
        state_ = State::kGround;
        return false;
      }
      if (b < 0x30) return !Append(b);  // intermediate
      if (seq_.size() == 1) {
        switch (b) {
          case '[':
            seq_.push_back('[');
            state_ = State::kCsi;
            return false;
          case ']':  // OSC
          case 'P':  // DCS
          case 'X':  // SOS
          case '^':  // PM
          case '_':  // APC
            seq_.clear();
            string_len_ = 2;
            bel_ends_string_ = b == ']';
            state_ = State::kString;
            return false;
          default:
            break;
        }
      }
      EndEscape(b, out);
      state_ = State::kGround;
      return false;
    }

    case State::kString:
      // Strings are never written, so they are not buffered: only their
      // length is counted. The terminator does not matter for safety (the
      // terminal never saw the opening), only for how much is hidden.
      if (b == kEsc) {
        state_ = State::kStringEscape;
        return false;
      }
      if ((b == kBel && bel_ends_string_)) {
        Drop();
        state_ = State::kGround;
        return false;
      }
      if (b == kCan || b == kSub) {
        Drop();
        out->push_back(char(b));
        state_ = State::kGround;
        return false;
      }
      if (++string_len_ > kMaxSequence) {
        Drop();
        state_ = State::kGround;
        return true;
      }
      return false;

    case State::kStringEscape:
      Drop();
      if (b == '\\') {  // ST
        state_ = State::kGround;
        return false;
      }
      // Any other ESC ends the string and starts a new sequence.
      seq_.assign(1, char(kEsc));
      state_ = State::kEscape;
      return true;
  }
  return false;
}

void SafeFilter::EndEscape(uint8_t final_byte, std::string* out) {
  std::string_view intermediates = std::string_view(seq_).substr(1);
  bool keep = intermediates.empty() ? In(char(final_byte), kEscFinals)
                                    : In(intermediates[0], kEscIntermediates);
  if (!keep) {
    Drop();
    return;
  }
  if (intermediates.empty() && final_byte == 'c') alternate_screen_ = false;  // RIS
  out->append(seq_);
  out->push_back(char(final_byte));
  seq_.clear();
}

void SafeFilter::EndCsi(std::string* out) {
  // seq_ = ESC '[' [private prefix] params intermediates final.
  std::string_view body = std::string_view(seq_).substr(2);
  char final_byte = body.back();
  body.remove_suffix(1);
  char prefix = 0;
  if (!body.empty() && body[0] >= '<' && body[0] <= '?') {
    prefix = body[0];
    body.remove_prefix(1);
  }
  size_t n = 0;
  while (n < body.size() && body[n] >= '0' && body[n] <= ';') ++n;
  std::string_view params = body.substr(0, n);
  body.remove_prefix(n);
  n = 0;
  while (n < body.size() && body[n] >= 0x20 && body[n] <= 0x2f) ++n;
  std::string_view intermediates = body.substr(0, n);
  body.remove_prefix(n);
  if (!body.empty()) {  // a private marker or parameter out of place: ignored by terminals
    Drop();
    return;
  }

  bool keep = false;
  if (intermediates.empty()) {
    if (prefix == 0) {
      if (final_byte == 'h' || final_byte == 'l') {
        FilterModes(params, prefix, final_byte, out);
        return;
      }
      keep = In(final_byte, kCsiFinals) ||
             (final_byte == 'T' && params.find(';') == std::string_view::npos);
    } else if (prefix == '?') {
      // DECSET/DECRST and XTSAVE/XTRESTORE of DEC modes; DECSED, DECSEL.
      if (In(final_byte, "hlsr")) {
        FilterModes(params, prefix, final_byte, out);
        return;
      }
      keep = final_byte == 'J' || final_byte == 'K';
    }
  } else if (prefix == 0 && intermediates.size() == 1) {
    switch (intermediates[0]) {
      case ' ':  // DECSCUSR cursor style, SL, SR
        keep = In(final_byte, "q@A");
        break;
      case '!':  // DECSTR soft reset
        keep = final_byte == 'p';
        break;
      case '"':  // DECSCA
        keep = final_byte == 'q';
        break;
      case '$':  // rectangle fill, erase, copy, attributes
        keep = In(final_byte, "xzvrt{");
        break;
      case '\'':  // DECIC, DECDC
        keep = In(final_byte, "}~");
        break;
      case '*':  // DECSACE
        keep = final_byte == 'x';
        break;
      case '#':  // XTPUSHSGR, XTPOPSGR
        keep = In(final_byte, "{}pq");
        break;
      default:
        break;
    }
  }
  if (!keep) {
    Drop();
    return;
  }
  out->append(seq_);
  seq_.clear();
}

void SafeFilter::FilterModes(std::string_view params, char prefix, char final_byte,
                             std::string* out) {
  std::string kept;
  size_t total = 0, allowed = 0;
  for (;;) {
    size_t semi = params.find(';');
    std::string_view item = params.substr(0, semi);
    ++total;
    // An empty parameter means 0; sub-parameters (':') are not modes.
    bool ok = AllDigits(item) && item.size() <= 9;
    if (ok) {
      long mode = 0;
      for (char c : item) mode = mode * 10 + (c - '0');
      ok = prefix == '?' ? !IsForbiddenDecMode(mode) : IsAllowedAnsiMode(mode);
    }
    if (ok) {
      if (allowed++ > 0) kept.push_back(';');
      kept.append(item);
      if (prefix == '?' && (final_byte == 'h' || final_byte == 'l') &&
          (item == "47" || item == "1047" || item == "1049")) {
        alternate_screen_ = final_byte == 'h';
      }
    }
    if (semi == std::string_view::npos) break;
    params.remove_prefix(semi + 1);
  }
  if (allowed == total) {
    out->append(seq_);
    seq_.clear();
    return;
  }
  Drop();
  if (allowed == 0) return;
  // Some modes were removed: write the others as a new sequence.
  out->append("\x1b[");
  if (prefix != 0) out->push_back(prefix);
  out->append(kept);
  out->push_back(final_byte);
}

// --- timing ------------------------------------------------------------------

int64_t ReplaySchedule::DueNanos(int64_t time_ns) {
  if (time_ns > prev_) {
    int64_t gap = time_ns - prev_;
    if (timing_.idle_limit_ns > 0 && gap > timing_.idle_limit_ns) gap = timing_.idle_limit_ns;
    capped_total_ += gap;
    prev_ = time_ns;
  }
  // capped_total_ never exceeds the recording's length (int64 nanoseconds),
  // and a slow speed is bounded so the product stays representable.
  long double due = static_cast<long double>(capped_total_) / timing_.speed;
  constexpr long double kMax = static_cast<long double>(std::numeric_limits<int64_t>::max() / 4);
  return due > kMax ? int64_t(kMax) : int64_t(due);
}

namespace {

// "12" or "12.5" (at most 9 digits each side) as nanoseconds.
bool ParseDecimalSeconds(std::string_view s, size_t max_whole_digits, int64_t* ns) {
  size_t dot = s.find('.');
  std::string_view whole = s.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
  if (whole.empty() || whole.size() > max_whole_digits || !AllDigits(whole)) return false;
  if (dot != std::string_view::npos && (frac.empty() || frac.size() > 9 || !AllDigits(frac))) {
    return false;
  }
  int64_t seconds = 0;
  for (char c : whole) seconds = seconds * 10 + (c - '0');
  int64_t nanos = 0;
  for (size_t k = 0; k < 9; ++k) nanos = nanos * 10 + (k < frac.size() ? frac[k] - '0' : 0);
  *ns = seconds * 1'000'000'000 + nanos;
  return true;
}

}  // namespace

StatusOr<int64_t> ParsePlaybackOffset(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("bad time '" + EscapeForTerminal(text) + "': " + std::string(why));
  };
  if (text.empty()) return bad("empty");
  if (text.size() > 32) return bad("too long");
  if (text.find(':') != std::string_view::npos) {
    // [H:]M:S[.frac]
    std::vector<std::string_view> parts;
    for (size_t start = 0;;) {
      size_t colon = text.find(':', start);
      parts.push_back(text.substr(start, colon == std::string_view::npos ? colon : colon - start));
      if (colon == std::string_view::npos) break;
      start = colon + 1;
    }
    if (parts.size() > 3) return bad("expected M:S or H:M:S");
    int64_t seconds_ns = 0;
    if (!ParseDecimalSeconds(parts.back(), 2, &seconds_ns) ||
        seconds_ns >= int64_t{60} * 1'000'000'000) {
      return bad("seconds must be 0 to 59");
    }
    int64_t minutes = 0;
    for (size_t k = 0; k + 1 < parts.size(); ++k) {
      std::string_view p = parts[k];
      bool first = k == 0;
      if (p.empty() || !AllDigits(p) || p.size() > (first ? 6 : 2)) {
        return bad("expected M:S or H:M:S");
      }
      int64_t v = 0;
      for (char c : p) v = v * 10 + (c - '0');
      if (!first && v >= 60) return bad("minutes must be 0 to 59");
      minutes = minutes * 60 + v;
    }
    return minutes * 60 * 1'000'000'000 + seconds_ns;
  }
  int64_t ns = 0;
  if (ParseDecimalSeconds(text, 9, &ns)) return ns;
  StatusOr<std::chrono::nanoseconds> d = config::ParseDuration(text);
  if (!d.ok()) {
    return bad("expected seconds (90, 1.5), units (1m30s, 250ms) or M:S");
  }
  return int64_t(d->count());
}

// --- Player ------------------------------------------------------------------

Player::Player(const PlayerOptions& options, Clock* clock, PlaybackControl* control, Sink sink)
    : options_(options),
      clock_(clock),
      control_(control),
      sink_(std::move(sink)),
      schedule_(options.timing),
      start_mono_(clock->MonotonicNanos()) {}

StatusOr<bool> Player::Play(const recorder::Record& r) {
  // What the person's terminal showed: the output, and stderr where the
  // command had no terminal.
  if (r.stream != recorder::Stream::kOutput && r.stream != recorder::Stream::kError) return true;
  if (options_.timed) {
    const int64_t due = schedule_.DueNanos(r.time_ns);
    for (bool waiting = true; waiting;) {
      int64_t deadline = paused_ ? PlaybackControl::kForever : start_mono_ + shift_ns_ + due;
      WaitResult w = control_->Wait(deadline);
      switch (w.kind) {
        case WaitResult::kDeadline:
          waiting = paused_;  // a deadline while paused is spurious: keep waiting
          break;
        case WaitResult::kPause: {
          int64_t now = clock_->MonotonicNanos();
          if (paused_) {
            shift_ns_ += now - pause_start_;
          } else {
            pause_start_ = now;
          }
          paused_ = !paused_;
          break;
        }
        case WaitResult::kSuspended:
          // Time stopped with the process (a pause already covers it).
          if (!paused_) shift_ns_ += w.suspended_ns;
          break;
        case WaitResult::kQuit:
          quit_signal_ = w.signal;
          return false;
      }
    }
  }
  buf_.clear();
  if (options_.safe) {
    filter_.Write(r.data, &buf_);
  } else {
    buf_.assign(AsChars(r.data));
  }
  if (!buf_.empty()) RETURN_IF_ERROR(sink_(buf_));
  return true;
}

Status Player::Finish() {
  if (!options_.safe) return OkStatus();
  buf_.clear();
  filter_.Finish(&buf_);
  if (!buf_.empty()) return sink_(buf_);
  return OkStatus();
}

std::optional<std::string> TerminalSizeWarning(uint16_t need_cols, uint16_t need_rows,
                                               uint16_t have_cols, uint16_t have_rows) {
  if (have_cols == 0 || have_rows == 0) return std::nullopt;
  if (need_cols <= have_cols && need_rows <= have_rows) return std::nullopt;
  return "the session used a " + std::to_string(need_cols) + "x" + std::to_string(need_rows) +
         " terminal but yours is " + std::to_string(have_cols) + "x" + std::to_string(have_rows) +
         "; the replay may look wrong until you enlarge it";
}

// --- asciicast ---------------------------------------------------------------

std::string FormatEventTime(int64_t time_ns) {
  if (time_ns < 0) time_ns = 0;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%lld.%06lld", static_cast<long long>(time_ns / 1'000'000'000),
                static_cast<long long>(time_ns % 1'000'000'000 / 1000));
  return buf;
}

std::string AsciicastWriter::Header(const recorder::SessionInfo& s) {
  nlohmann::ordered_json h;
  h["version"] = 2;
  h["width"] = s.cols != 0 ? s.cols : 80;
  h["height"] = s.rows != 0 ? s.rows : 24;
  int64_t seconds = s.start_unix_nanos / 1'000'000'000;
  if (s.start_unix_nanos < 0 && s.start_unix_nanos % 1'000'000'000 != 0) --seconds;
  h["timestamp"] = seconds;
  if (!s.term.empty()) h["env"] = {{"TERM", s.term}};
  h["title"] = "jitgate session " + s.id + ": " + s.user + " as " + s.login + "@" + s.target;
  if (!s.command.empty()) h["command"] = s.command;
  return h.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void AsciicastWriter::Event(int64_t time_ns, std::string_view code, const std::string& data,
                            std::string* out) {
  // asciinema 2's own layout: [time, "code", "data"] with ", " separators.
  out->push_back('[');
  out->append(FormatEventTime(time_ns));
  out->append(", \"");
  out->append(code);
  out->append("\", ");
  // data is valid UTF-8 by construction; control characters become \uXXXX.
  out->append(nlohmann::json(data).dump());
  out->append("]\n");
}

void AsciicastWriter::Add(const recorder::Record& r, std::string* out) {
  std::string text;
  switch (r.stream) {
    case recorder::Stream::kOutput:
      output_.Decode(r.data, &text);
      last_output_ns_ = r.time_ns;
      if (!text.empty()) Event(r.time_ns, "o", text, out);
      break;
    case recorder::Stream::kInput:
      input_.Decode(r.data, &text);
      last_input_ns_ = r.time_ns;
      if (!text.empty()) Event(r.time_ns, "i", text, out);
      break;
    case recorder::Stream::kError:
      // asciicast has one output stream: stderr joins it, as on a terminal.
      error_.Decode(r.data, &text);
      last_error_ns_ = r.time_ns;
      if (!text.empty()) Event(r.time_ns, "o", text, out);
      break;
    case recorder::Stream::kResize:
      Event(r.time_ns, "r", std::to_string(r.cols) + "x" + std::to_string(r.rows), out);
      break;
    case recorder::Stream::kSuspend:
      break;  // asciicast has no such event; the store keeps it
  }
}

void AsciicastWriter::Finish(std::string* out) {
  std::string text;
  output_.Finish(&text);
  if (!text.empty()) Event(last_output_ns_, "o", text, out);
  text.clear();
  error_.Finish(&text);
  if (!text.empty()) Event(std::max(last_error_ns_, last_output_ns_), "o", text, out);
  text.clear();
  input_.Finish(&text);
  if (!text.empty()) Event(last_input_ns_, "i", text, out);
}

}  // namespace jitgate::cli
