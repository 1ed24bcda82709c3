import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The floor of fp8q's exact 16-bit path, without fp8q: the source files mapped, every 16-bit value read twice,
 * counted once (the histogram) and looked up once (the encode table), in 8 MiB chunks on all cores. No output,
 * no headers, no manifest: what is left of a conversion's time once everything but the two passes is taken away.
 * Prints each repetition's time inside the JVM (the first includes mapping and JIT warm-up).
 *
 * Usage: JDK25/bin/javac -d /tmp/floor bench/scripts/Floor.java && JDK25/bin/java -cp /tmp/floor Floor SRC/*.safetensors
 * (compiled first: in source-file mode the JIT is still busy with javac and the first repetition takes 1.5x as long)
 */
public class Floor {

    static void histogram(short[] v, int len, int[] counts) {
        for (int j = 0; j < len; j++) {
            counts[v[j] & 0xFFFF]++;
        }
    }

    static void lookUp(short[] v, int len, byte[] table, byte[] codes) {
        for (int j = 0; j < len; j++) {
            codes[j] = table[v[j] & 0xFFFF];
        }
    }

    public static void main(String[] files) throws Exception {
        List<MemorySegment> sources = new ArrayList<>();
        Arena arena = Arena.ofShared();
        for (String f : files) {
            try (FileChannel ch = FileChannel.open(Path.of(f))) {
                sources.add(ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena));
            }
        }
        byte[] table = new byte[65536];
        new Random(1).nextBytes(table);
        int cores = Runtime.getRuntime().availableProcessors();
        ExecutorService pool = Executors.newFixedThreadPool(cores);
        for (int rep = 0; rep < 6; rep++) {
            long t0 = System.nanoTime();
            List<Future<Long>> parts = new ArrayList<>();
            for (MemorySegment s : sources) {
                for (long off = 0; off < s.byteSize(); off += 8L << 20) {
                    long from = off;
                    long to = Math.min(s.byteSize() & ~1L, off + (8L << 20));
                    parts.add(pool.submit(() -> {
                        short[] v = new short[32768];
                        byte[] codes = new byte[32768];
                        int[] counts = new int[65536];
                        long sink = 0;
                        for (int pass = 0; pass < 2; pass++) {
                            for (long i = from; i < to; i += 65536) {
                                int len = (int) Math.min(32768, (to - i) / 2);
                                MemorySegment.copy(s, ValueLayout.JAVA_SHORT_UNALIGNED, i, v, 0, len);
                                if (pass == 0) {
                                    histogram(v, len, counts);
                                } else {
                                    lookUp(v, len, table, codes);
                                    sink += codes[len / 2];
                                }
                            }
                        }
                        return sink + counts[0];
                    }));
                }
            }
            long sink = 0;
            for (Future<Long> p : parts) {
                sink += p.get();
            }
            System.out.printf("rep %d: %.3f s on %d cores (checksum %d)%n", rep, (System.nanoTime() - t0) / 1e9, cores, sink);
        }
        pool.shutdown();
    }
}
