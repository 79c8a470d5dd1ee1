// Playing back and exporting recorded sessions (docs/auditor.md): the pure
// parts of `jitgate replay`, `watch` and `export`, free of terminals, signals
// and files so that tests drive them with a SimulatedClock and strings.
//
//   SafeFilter       removes the escape sequences that could act on the
//                    auditor's terminal (answer queries, set the clipboard or
//                    title, redefine keys, ...), keeping what draws the screen.
//   Utf8TextDecoder  raw bytes -> valid UTF-8 text (asciicast), across records.
//   ReplaySchedule   recording time -> playback time (speed, idle cap, start).
//   Player           writes records when they are due, through a
//                    PlaybackControl that waits and reports the auditor's keys.
//   AsciicastWriter  asciicast v2 lines for a session.
//
// None of these classes is thread-safe; each is used by one thread.
#ifndef JITGATE_CLI_REPLAY_H_
#define JITGATE_CLI_REPLAY_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/bytes.h"
#include "core/base/clock.h"
#include "core/base/status.h"
#include "recorder/recording.h"

namespace jitgate::cli {

// Utf8TextDecoder turns a byte stream into valid UTF-8 following the WHATWG
// Encoding Standard's UTF-8 decoder (the same replacement as Python's
// bytes.decode("utf-8", "replace"), which asciinema 2 uses): each maximal
// invalid subsequence becomes one U+FFFD. A character split across calls is
// carried to the next call.
class Utf8TextDecoder {
 public:
  // Appends the text of every character completed by data to *out.
  void Decode(ByteSpan data, std::string* out);
  // End of stream: an incomplete character becomes U+FFFD; the decoder is
  // then ready for a new stream.
  void Finish(std::string* out);
  // True while part of a character is held.
  bool pending() const { return needed_ != 0; }

  // One byte of the decoder, for callers that interleave decoding with
  // their own parsing (SafeFilter).
  enum class Step {
    kMore,        // part of a character; nothing to emit yet
    kChar,        // *cp is a complete character
    kError,       // b is invalid: emit one U+FFFD
    kErrorAgain,  // the held bytes are invalid: emit one U+FFFD, then Feed(b) again
  };
  Step Feed(uint8_t b, uint32_t* cp);

 private:
  void Reset();
  uint32_t cp_ = 0;
  int needed_ = 0, seen_ = 0;
  uint8_t lower_ = 0x80, upper_ = 0xbf;
};

// SafeFilter is a streaming filter over terminal output that the auditor's
// terminal may safely interpret. Its output consists only of
//   * valid UTF-8 text without C1 controls (U+0080..U+009F are removed;
//     bytes that are not valid UTF-8 become U+FFFD),
//   * C0 controls except ENQ (which makes a terminal send its answerback),
//   * complete 7-bit ESC and CSI sequences from an allowlist (SGR, cursor
//     movement, erase, scrolling, insert/delete, tab stops, alternate screen,
//     cursor style, charset designation, ...), written byte for byte, except
//     that DEC/ANSI mode changes lose the modes that report input
//     (mouse, focus), resize the window or lock the keyboard. A C0 control
//     inside a sequence is written just before it (a terminal executes it
//     there and goes on with the sequence).
// Everything else is dropped whole: every OSC, DCS, SOS, PM and APC string
// (titles, palette, clipboard, hyperlinks -- their text is kept, it lies
// outside the sequence --, iTerm2, tmux passthrough, DECRQSS, DECUDK,
// graphics), every query the terminal would answer (DSR, DA, DECRQM, XTVERSION,
// kitty keyboard query, ...), window operations (CSI ... t), and any
// sequence not on the list. docs/auditor.md has the exact table.
//
// Because every sequence it emits is complete and nothing it emits can open a
// string, the auditor's terminal is back in its ground state after every
// Write, however the recorded bytes were split into records.
//
// A sequence longer than kMaxSequence bytes is dropped and the filter returns
// to text: the rest of it is shown as text, so an unterminated string cannot
// hide the remainder of a session, and memory stays bounded.
class SafeFilter {
 public:
  static constexpr size_t kMaxSequence = 4096;

  SafeFilter() = default;

  // Filters data and appends what may be written now to *out. Bytes of an
  // incomplete sequence or character are held until the next call.
  void Write(ByteSpan data, std::string* out);
  // End of the stream: an incomplete sequence is dropped, an incomplete UTF-8
  // character becomes U+FFFD. The filter is then ready for a new stream.
  void Finish(std::string* out);

  // Escape sequences and control characters removed so far.
  uint64_t dropped() const { return dropped_; }

  // What to write to the auditor's terminal after the stream (or when the
  // auditor quits in the middle), so that no mode the session left behind
  // stays: leave the alternate screen if the session is still in it, reset
  // scroll margins (keeping the cursor), SGR, character sets, insert mode,
  // cursor keys and keypad, reverse video, bracketed paste and cursor style,
  // enable autowrap and show the cursor.
  std::string Epilogue() const;

 private:
  enum class State { kGround, kEscape, kCsi, kString, kStringEscape };
  // Consumes b; returns true if b must be consumed again in the new state.
  bool Step(uint8_t b, std::string* out);
  bool Ground(uint8_t b, std::string* out);
  // Adds b to the pending sequence; false (and the sequence dropped) if that
  // would exceed kMaxSequence.
  bool Append(uint8_t b);
  void Drop();
  void EndEscape(uint8_t final_byte, std::string* out);
  void EndCsi(std::string* out);
  void FilterModes(std::string_view params, char prefix, char final_byte, std::string* out);

  State state_ = State::kGround;
  std::string seq_;                // the pending ESC or CSI sequence, from the ESC
  size_t string_len_ = 0;          // bytes of the pending string sequence
  bool bel_ends_string_ = false;   // OSC: BEL terminates it too
  Utf8TextDecoder utf8_;           // text is decoded to find C1 controls
  bool alternate_screen_ = false;  // as left by the sequences written so far
  uint64_t dropped_ = 0;
};

// Appends the UTF-8 encoding of cp (a scalar value) to *out.
void AppendUtf8(uint32_t cp, std::string* out);

// How recorded time maps to playback time.
struct ReplayTiming {
  double speed = 1.0;         // > 0; 2 plays twice as fast
  int64_t idle_limit_ns = 0;  // longest pause between two records; 0: no cap
  int64_t from_ns = 0;        // records before this offset are written at once
};

// ReplaySchedule computes when each record is due. Every gap between two
// consecutive records (the first one after from_ns counts from from_ns) is
// capped at idle_limit_ns and then divided by speed; records before from_ns
// are due at 0, so the screen is fast-forwarded to the starting point.
class ReplaySchedule {
 public:
  explicit ReplaySchedule(const ReplayTiming& timing) : timing_(timing), prev_(timing.from_ns) {}
  // Playback time (nanoseconds after playback started) at which a record
  // recorded at time_ns is due. time_ns must not decrease between calls; the
  // result never does.
  int64_t DueNanos(int64_t time_ns);

 private:
  ReplayTiming timing_;
  int64_t prev_;
  int64_t capped_total_ = 0;  // sum of the capped gaps, before scaling
};

// ParsePlaybackOffset reads a time offset or length typed by the auditor:
// seconds with an optional fraction ("90", "1.5"), units ("1m30s", "250ms",
// see config::ParseDuration), or a clock position ("1:30", "1:02:03.5").
// kInvalidArgument with a one-line reason otherwise. The result is >= 0.
StatusOr<int64_t> ParsePlaybackOffset(std::string_view text);

// What PlaybackControl::Wait reports.
struct WaitResult {
  enum Kind {
    kDeadline,   // the deadline passed
    kPause,      // the auditor pressed space: toggle pause
    kQuit,       // 'q', or a signal (then signal != 0)
    kSuspended,  // the process was stopped (Ctrl-Z) for suspended_ns
  };
  Kind kind = kDeadline;
  int signal = 0;
  int64_t suspended_ns = 0;
};

// PlaybackControl waits for time to pass or for the auditor. The real one
// (session_commands.cc) puts the terminal in cbreak mode, reads keys and
// catches signals; tests use a scripted one over a SimulatedClock.
class PlaybackControl {
 public:
  static constexpr int64_t kForever = std::numeric_limits<int64_t>::max();
  virtual ~PlaybackControl() = default;
  // Returns as soon as an event is pending, else once the clock's
  // MonotonicNanos() >= deadline (kForever: only on an event). Events are
  // reported even when the deadline has already passed.
  virtual WaitResult Wait(int64_t deadline_mono_ns) = 0;
};

struct PlayerOptions {
  ReplayTiming timing;
  bool timed = true;  // false: write everything at once (--raw, watch)
  bool safe = true;   // pass output through a SafeFilter
};

// Player writes a session's output records to a sink, on time. Input records
// are never written (they were echoed, if at all, by the session's output);
// resize records are ignored (the caller warns about size up front).
//
// clock, control and the sink must outlive the Player; control may be null
// when !options.timed.
class Player {
 public:
  using Sink = std::function<Status(std::string_view)>;
  Player(const PlayerOptions& options, Clock* clock, PlaybackControl* control, Sink sink);

  // Waits until r is due (handling pause and quit) and writes it. Returns
  // false once the auditor quit (quit_signal() says how), an error if the
  // sink failed.
  StatusOr<bool> Play(const recorder::Record& r);
  // Flushes the filter (end of the session).
  Status Finish();

  int quit_signal() const { return quit_signal_; }
  uint64_t dropped() const { return filter_.dropped(); }
  // The safe filter's Epilogue() (safe mode only; "" otherwise).
  std::string Epilogue() const { return options_.safe ? filter_.Epilogue() : std::string(); }

 private:
  PlayerOptions options_;
  Clock* clock_;
  PlaybackControl* control_;
  Sink sink_;
  SafeFilter filter_;
  ReplaySchedule schedule_;
  int64_t start_mono_;
  int64_t shift_ns_ = 0;  // time spent paused or suspended
  bool paused_ = false;
  int64_t pause_start_ = 0;
  int quit_signal_ = 0;
  std::string buf_;
};

// The warning printed once before a replay when the auditor's terminal
// (have_*; 0 = unknown) is smaller than the largest size the session used
// (need_*), or nullopt.
std::optional<std::string> TerminalSizeWarning(uint16_t need_cols, uint16_t need_rows,
                                               uint16_t have_cols, uint16_t have_rows);

// "12.345678": nanoseconds as seconds with microsecond precision (truncated).
std::string FormatEventTime(int64_t time_ns);

// AsciicastWriter produces an asciicast v2 file (docs/auditor.md): the header
// line, then one event line per record: [t, "o", text] for output, [t, "i",
// text] for input, [t, "r", "COLSxROWS"] for resizes. Data is decoded with a
// Utf8TextDecoder per stream, so the export is lossy for bytes that are not
// UTF-8 (the store keeps the raw bytes). A record that only starts a
// character produces no line; the character appears with the record that
// completes it.
class AsciicastWriter {
 public:
  // The header line (with its newline):
  // {"version":2,"width":..,"height":..,"timestamp":..,"env":{"TERM":..},
  //  "title":..[,"command":..]}. Unknown sizes are written as 80x24.
  static std::string Header(const recorder::SessionInfo& s);
  // Appends the line for r, if any, to *out.
  void Add(const recorder::Record& r, std::string* out);
  // Appends U+FFFD lines for characters left incomplete at the end.
  void Finish(std::string* out);

 private:
  void Event(int64_t time_ns, std::string_view code, const std::string& data, std::string* out);
  Utf8TextDecoder input_, output_, error_;  // error_: stderr (Stream::kError)
  int64_t last_input_ns_ = 0, last_output_ns_ = 0, last_error_ns_ = 0;
};

}  // namespace jitgate::cli

#endif  // JITGATE_CLI_REPLAY_H_
