package dev.fp8q.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Splits one shell command line into words as sh would for the plain commands the CI recipes hold: quotes,
 * backslash-newline, $VAR and ${VAR}. Anything it cannot run faithfully (pipes, redirections, command lists,
 * an unknown variable) throws, so a recipe's command cannot silently be tested as something else.
 */
final class ShellWords {

    private ShellWords() {}

    /** Logical lines of a script: backslash-newline continues a line. */
    static List<String> lines(String script) {
        return List.of(script.replace("\\\n", " ").split("\n"));
    }

    static List<String> split(String line, Map<String, String> vars) {
        List<String> words = new ArrayList<>();
        StringBuilder w = null;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (c == '\'') {
                int end = line.indexOf('\'', i + 1);
                w = append(w, line.substring(i + 1, end));
                i = end;
            } else if (c == '"') {
                w = w == null ? new StringBuilder() : w;
                for (i++; line.charAt(i) != '"'; i++) {
                    i = line.charAt(i) == '$' ? expand(line, i, vars, w) : append(w, line.charAt(i), i);
                }
            } else if (c == '$') {
                w = w == null ? new StringBuilder() : w;
                i = expand(line, i, vars, w);
            } else if (Character.isWhitespace(c)) {
                if (w != null) {
                    words.add(w.toString());
                    w = null;
                }
            } else if ("|&;<>`()".indexOf(c) >= 0) {
                throw new IllegalArgumentException("not a plain command: " + line);
            } else {
                w = append(w, String.valueOf(c));
            }
        }
        if (w != null) {
            words.add(w.toString());
        }
        return words;
    }

    private static StringBuilder append(StringBuilder w, String s) {
        return (w == null ? new StringBuilder() : w).append(s);
    }

    private static int append(StringBuilder w, char c, int i) {
        w.append(c);
        return i;
    }

    /** Expands the variable starting at line[i] ('$') into w; returns the index of its last character. */
    private static int expand(String line, int i, Map<String, String> vars, StringBuilder w) {
        int start = i + 1;
        boolean braced = start < line.length() && line.charAt(start) == '{';
        int end = braced ? line.indexOf('}', start) : start;
        if (!braced) {
            while (end < line.length() && (Character.isLetterOrDigit(line.charAt(end)) || line.charAt(end) == '_')) {
                end++;
            }
        }
        String name = line.substring(braced ? start + 1 : start, end);
        String value = vars.get(name);
        if (value == null) {
            throw new IllegalArgumentException("unknown variable $" + name + " in: " + line);
        }
        w.append(value);
        return braced ? end : end - 1;
    }
}
