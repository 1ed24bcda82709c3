package dev.fp8q.cli;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Byte sizes as users write them: 5GB (10^9), 64MiB (2^20), 1000. */
final class SizeParser {

    private static final Pattern SIZE = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*([kmgt]?i?b?)?", Pattern.CASE_INSENSITIVE);

    private SizeParser() {}

    static long parse(String s) {
        Matcher m = SIZE.matcher(s.trim());
        if (!m.matches()) {
            throw new Fp8q.UsageException("not a size: '" + s + "' (examples: 5GB, 512MiB, 1000000)");
        }
        String unit = m.group(2) == null ? "" : m.group(2).toLowerCase(Locale.ROOT);
        boolean binary = unit.contains("i");
        int power = unit.isEmpty() || unit.equals("b") ? 0 : "kmgt".indexOf(unit.charAt(0)) + 1;
        double v = Double.parseDouble(m.group(1)) * Math.pow(binary ? 1024 : 1000, power);
        if (v < 1 || v > Long.MAX_VALUE) {
            throw new Fp8q.UsageException("size out of range: '" + s + "'");
        }
        return (long) v;
    }
}
