#include "util/cli_help.hpp"

#include <algorithm>
#include <cctype>
#include <memory>
#include <utility>

#include "util/closest_match.hpp"

namespace deepops {
namespace {

// Every subcommand of app, nameless option groups opened up, disabled ones
// left out.
void collect_subcommands(const CLI::App& app, std::vector<const CLI::App*>& out) {
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_disabled()) continue;
    if (sub->get_name().empty()) {
      collect_subcommands(*sub, out);
    } else {
      out.push_back(sub);
    }
  }
}

std::vector<const CLI::App*> subcommands_of(const CLI::App& app) {
  std::vector<const CLI::App*> out;
  collect_subcommands(app, out);
  return out;
}

bool is_subcommand(const CLI::App& app, const std::string& word) {
  for (const CLI::App* sub : subcommands_of(app)) {
    if (sub->check_name(word)) return true;
  }
  return false;
}

bool has_positionals(const CLI::App& app) {
  if (!app.get_options([](const CLI::Option* o) { return o->get_positional(); }).empty()) {
    return true;
  }
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name().empty() && has_positionals(*sub)) return true;
  }
  return false;
}

bool looks_like_option(const std::string& word) {
  return word.size() > 1 && word[0] == '-' && word[1] != ' ';
}

// How many words an option takes, as CLI11's parser counts them
// (App::_parse_arg): at least `least`, at most `most`, more while the
// option allows extra arguments and the next word is a plain one.
struct Arity {
  int least = 0;
  int most = 0;
  bool extra = false;
};

Arity arity_of(const CLI::Option& opt) {
  Arity a;
  a.least = std::min(opt.get_type_size_min(), opt.get_items_expected_min());
  a.most = opt.get_items_expected_max();
  a.extra = opt.get_allow_extra_args();
  if (a.most >= CLI::detail::expected_max_vector_size / 16 && !a.extra) {
    a.most = std::max(opt.get_type_size_max(), 1) * std::max(opt.get_expected_min(), 1);
  }
  return a;
}

// The readable value name CLI11's description of a check suggests: the
// choices of a set ("{root,keep}" -> "root|keep"), or the kind of value it
// names ("FILE", "DIR", "PATH(existing)" -> "PATH"); "" otherwise (a named
// Range describes itself by its name: "POSITIVE" is no value name).
std::string name_from_check(const std::string& description) {
  if (description.size() > 2 && description.front() == '{' && description.back() == '}' &&
      description.find("->") == std::string::npos) {
    std::string choices = description.substr(1, description.size() - 2);
    for (char& c : choices) {
      if (c == ',') c = '|';
    }
    return choices;
  }
  size_t end = 0;
  while (end < description.size() &&
         (std::isupper(static_cast<unsigned char>(description[end])) ||
          std::isdigit(static_cast<unsigned char>(description[end])) || description[end] == '_')) {
    ++end;
  }
  const std::string word = description.substr(0, end);
  for (const char* kind : {"FILE", "DIR", "PATH", "IPV4", "SIZE"}) {
    if (word == kind) return word;
  }
  return "";
}

// "1 to 32" from CLI11's "INT in [1 - 32]" (Range) or "INT bounded to
// [1 - 32]" (Bound); "" for any other description.
std::string range_from_check(const std::string& description) {
  const size_t open = description.find(" [");
  if (open == std::string::npos || description.back() != ']') return "";
  if (description.find(" in [") != open - 3 && description.find(" bounded to [") != open - 11) {
    return "";
  }
  const std::string inside = description.substr(open + 2, description.size() - open - 3);
  const size_t dash = inside.find(" - ");
  if (dash == std::string::npos) return "";
  return inside.substr(0, dash) + " to " + inside.substr(dash + 3);
}

bool is_cli11_type_name(const std::string& name) {
  static const char* const kGenerated[] = {"",     "TEXT",    "INT",  "UINT",   "FLOAT",
                                           "CHAR", "BOOLEAN", "ENUM", "NUMBER", "VALUE"};
  for (const char* generated : kGenerated) {
    if (name == generated) return true;
  }
  return name.front() == '[';  // a tuple's: [TEXT,INT]
}

std::string name_from_option(const CLI::Option& opt) {
  if (opt.get_lnames().empty()) return "VALUE";
  std::string name = opt.get_lnames().front();
  for (char& c : name) {
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

void make_option_readable(CLI::Option& opt) {
  std::string from_check;
  std::string range;
  for (int i = 0;; ++i) {
    CLI::Validator* check = nullptr;
    try {
      check = opt.get_validator(i);
    } catch (const CLI::OptionNotFound&) {
      break;
    }
    const std::string description = check->get_description();
    if (description.empty()) continue;
    if (const std::string r = range_from_check(description); !r.empty()) {
      range = r;
    } else if (from_check.empty()) {
      from_check = name_from_check(description);
    }
    check->description("");
  }
  if (opt.get_positional() && !opt.nonpositional()) {
    opt.type_name("");
    return;
  }
  if (!opt.get_option_text().empty() || opt.get_items_expected_max() == 0) return;  // a flag
  if (!range.empty() && opt.get_description().find(range) == std::string::npos) {
    opt.description(opt.get_description() + " (" + range + ")");
  }
  const std::string given = opt.get_type_name();
  if (!is_cli11_type_name(given)) return;
  if (!from_check.empty()) {
    opt.type_name(from_check);
  } else if (given == "INT" || given == "UINT" || given == "FLOAT" || given == "NUMBER") {
    opt.type_name("N");
  } else {
    opt.type_name(name_from_option(opt));
  }
}

// CLI11's formatter, with the usage line of one command completed.
class UsageFormatter : public CLI::Formatter {
 public:
  UsageFormatter(const CLI::Formatter& base, const CLI::App* owner, std::string arguments)
      : CLI::Formatter(base), owner_(owner), arguments_(std::move(arguments)) {}

  std::string make_usage(const CLI::App* app, std::string name) const override {
    std::string usage = CLI::Formatter::make_usage(app, std::move(name));
    if (app != owner_ || arguments_.empty()) return usage;
    const size_t end = usage.find_last_not_of('\n');
    return usage.substr(0, end + 1) + " " + arguments_ + usage.substr(end + 1);
  }

 private:
  const CLI::App* owner_;
  std::string arguments_;
};

}  // namespace

std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : subcommands_of(app)) {
    names.push_back(sub->get_name());
    for (const auto& alias : sub->get_aliases()) names.push_back(alias);
  }
  return names;
}

std::optional<std::string> unknown_subcommand(const CLI::App& app, int argc,
                                              const char* const* argv) {
  if (has_positionals(app)) return std::nullopt;
  const std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
  // A word CLI11 would take as an option's value rather than classify.
  auto plain = [&](const std::string& word) {
    return word != "--" && !looks_like_option(word) && !is_subcommand(app, word);
  };
  size_t i = 0;
  while (i < args.size()) {
    const std::string& word = args[i++];
    if (word == "--") return std::nullopt;  // CLI11 takes no subcommand after it
    if (is_subcommand(app, word)) return std::nullopt;
    if (!looks_like_option(word)) return word;
    const CLI::Option* opt = nullptr;
    bool inline_value = false;
    if (word.starts_with("--")) {
      const size_t eq = word.find('=');
      opt = app.get_option_no_throw(word.substr(0, eq));
      inline_value = eq != std::string::npos;
    } else {
      // -abc: flags a and b, then c, which may take "-cVALUE"'s VALUE.
      for (size_t k = 1; k < word.size(); ++k) {
        opt = app.get_option_no_throw(std::string{'-', word[k]});
        if (opt == nullptr || opt->get_items_expected_max() != 0) {
          inline_value = k + 1 < word.size();
          break;
        }
      }
    }
    // Not app's, so of unknown arity: the next word may be its value.
    // CLI11 reports the option.
    if (opt == nullptr) return std::nullopt;
    const Arity a = arity_of(*opt);
    if (a.most == 0) continue;
    int taken = inline_value ? 1 : 0;
    for (; taken < a.least && i < args.size(); ++taken) ++i;
    for (; (taken < a.most || a.extra) && i < args.size() && plain(args[i]); ++taken) ++i;
  }
  return std::nullopt;
}

std::string unknown_subcommand_message(const CLI::App& app, std::string_view word) {
  std::string message = "unknown command '" + std::string(word) + "'";
  if (auto match = closest_match(word, subcommand_names(app))) {
    return message + "; did you mean '" + *match + "'?";
  }
  std::string names;
  for (const CLI::App* sub : subcommands_of(app)) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
  }
  return message + "; the commands are: " + names;
}

void set_usage_arguments(CLI::App& app, std::string arguments) {
  const auto* current = dynamic_cast<const CLI::Formatter*>(app.get_formatter().get());
  app.formatter(std::make_shared<UsageFormatter>(current ? *current : CLI::Formatter(), &app,
                                                 std::move(arguments)));
}

void make_help_readable(CLI::App& app) {
  for (CLI::Option* opt : app.get_options()) make_option_readable(*opt);
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    make_help_readable(*sub);
  }
}

int parse_or_explain(CLI::App& app, std::string_view program, int usage_error, int argc,
                     const char* const* argv, std::ostream& out, std::ostream& err) {
  // Nothing typed where a command is needed: the whole help says more than
  // CLI11's "A subcommand is required" (and is what Enroot prints).
  if (argc <= 1 && app.get_require_subcommand_min() > 0) {
    out << app.help();
    return usage_error;
  }
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0) {
      if (auto word = unknown_subcommand(app, argc, argv)) {
        err << program << ": " << unknown_subcommand_message(app, *word) << "\n";
        return usage_error;
      }
    }
    return app.exit(e, out, err) == 0 ? 0 : usage_error;
  }
}

}  // namespace deepops
