// What a transfer shows on a terminal: lines fitted to its width (the name abbreviated
// first, then the least useful fields dropped) and redrawn in place, each clearing what an
// older, longer line left. Messages (warnings, tracker news, -v logs) go above the block.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::cli {

// One field of a line, after the name: `drop` orders which go first when the line is too
// wide (the highest first; 0: never dropped).
struct line_field {
  std::string text;
  int drop = 0;
};

// Characters a terminal shows for UTF-8 text (code points; no wide-glyph table).
[[nodiscard]] std::size_t display_width(std::string_view s);
// s cut to at most `width` columns in its middle, keeping its end (a file extension):
// "a-very-long-na...e.iso".
[[nodiscard]] std::string abbreviate(std::string_view s, std::size_t width);
// "NAME  FIELD  FIELD" in fewer than `columns` columns: the name abbreviated down to 16
// columns, then fields dropped, then (a terminal narrower than the essentials) cut.
[[nodiscard]] std::string fit_line(std::string_view name, const std::vector<line_field>& fields, std::size_t columns);

// A JSON line with plain decimal numbers (never 4.7E6): doubles with up to 6 decimals,
// trailing zeros dropped. Objects keep their order.
[[nodiscard]] std::string plain_json(const boost::json::value& v);

class live_display {
 public:
  // Draws only when stderr is a terminal (`tty`); otherwise draw() does nothing.
  explicit live_display(bool tty);
  [[nodiscard]] bool tty() const { return tty_; }
  [[nodiscard]] std::size_t columns() const { return cols_; }
  [[nodiscard]] std::size_t rows() const { return rows_; }
  // Reads the terminal's size again (after SIGWINCH); COLUMNS, then 80x24 when unknown.
  void refresh_size();
  // Replaces the block drawn last by these lines (each fitted to columns() already).
  void draw(const std::vector<std::string>& lines);
  // Clears the block, prints `line` on stderr as a line of its own; the next draw()
  // starts a new block below it.
  void message(std::string_view line);
  // Ends the block: what comes next starts on a fresh line.
  void finish();

 private:
  void clear_block();
  bool tty_;
  std::size_t cols_ = 80, rows_ = 24;
  std::size_t drawn_ = 0;  // lines of the block on screen
};

}  // namespace shoal::cli
