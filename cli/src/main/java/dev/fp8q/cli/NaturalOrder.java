package dev.fp8q.cli;

import java.util.Comparator;

/** Names with their digit runs compared as numbers: blocks.2 before blocks.10, as a reader counts. */
final class NaturalOrder implements Comparator<String> {

    static final NaturalOrder INSTANCE = new NaturalOrder();

    private NaturalOrder() {}

    @Override
    public int compare(String a, String b) {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            char ca = a.charAt(i);
            char cb = b.charAt(j);
            if (isDigit(ca) && isDigit(cb)) {
                int ea = runEnd(a, i);
                int eb = runEnd(b, j);
                int c = compareNumbers(a.substring(i, ea), b.substring(j, eb));
                if (c != 0) {
                    return c;
                }
                i = ea;
                j = eb;
            } else {
                if (ca != cb) {
                    return Character.compare(ca, cb);
                }
                i++;
                j++;
            }
        }
        int c = Integer.compare(a.length() - i, b.length() - j);
        return c != 0 ? c : a.compareTo(b); // equal as numbers ("07" and "7"): still a total order
    }

    /** Any length: leading zeros skipped, then the longer is larger, then digit by digit. */
    private static int compareNumbers(String x, String y) {
        String u = x.substring(Math.min(leadingZeros(x), x.length() - 1));
        String v = y.substring(Math.min(leadingZeros(y), y.length() - 1));
        return u.length() != v.length() ? Integer.compare(u.length(), v.length()) : u.compareTo(v);
    }

    private static int leadingZeros(String s) {
        int k = 0;
        while (k < s.length() && s.charAt(k) == '0') {
            k++;
        }
        return k;
    }

    private static int runEnd(String s, int from) {
        int k = from;
        while (k < s.length() && isDigit(s.charAt(k))) {
            k++;
        }
        return k;
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }
}
