package dev.fp8q.converter;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Part index of count (1-based) of a conversion split across machines (convert --part I/N), and how the source's
 * shards are dealt out: the same on every machine given the same SRC, so each part knows what every other holds.
 */
public record PartOf(int index, int count) {

    public PartOf {
        if (count < 1 || index < 1 || index > count) {
            throw new IllegalArgumentException("a part is I/N with 1 <= I <= N, not " + index + "/" + count);
        }
    }

    /** "I/N", e.g. "2/4". */
    public static PartOf parse(String s) {
        String[] f = s.trim().split("/", -1);
        try {
            if (f.length == 2) {
                return new PartOf(Integer.parseInt(f[0].trim()), Integer.parseInt(f[1].trim()));
            }
        } catch (NumberFormatException e) {
            // refused below
        }
        throw new IllegalArgumentException("'" + s + "' is not I/N (e.g. 2/4)");
    }

    @Override
    public String toString() {
        return index + "/" + count;
    }

    /**
     * The part (1-based) of every shard, by bytes: largest first (ties by name), each to the part holding the
     * fewest bytes so far (ties to the lowest number). Greedy longest-first: no part exceeds the ideal share by
     * more than the largest shard, and the result depends only on the names and sizes.
     */
    public static Map<String, Integer> assign(Map<String, Long> bytesByShard, int count) {
        List<Map.Entry<String, Long>> order = new ArrayList<>(bytesByShard.entrySet());
        order.sort(Comparator.<Map.Entry<String, Long>>comparingLong(Map.Entry::getValue).reversed()
                .thenComparing(Map.Entry::getKey));
        long[] load = new long[count];
        Map<String, Integer> out = new TreeMap<>();
        for (Map.Entry<String, Long> e : order) {
            int least = 0;
            for (int p = 1; p < count; p++) {
                if (load[p] < load[least]) {
                    least = p;
                }
            }
            load[least] += e.getValue();
            out.put(e.getKey(), least + 1);
        }
        return out;
    }
}
