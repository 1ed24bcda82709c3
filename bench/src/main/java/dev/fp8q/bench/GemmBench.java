package dev.fp8q.bench;

import dev.fp8q.verifier.math.Mat;
import dev.fp8q.verifier.math.NaiveGemm;
import dev.fp8q.verifier.math.VectorGemm;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/** The verifier's float32 GEMM (c = a · bᵀ, a Linear layer). GFLOP/s = 2 m n k / time. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class GemmBench {

    @Param({"1024"})
    public int m;
    @Param({"1024"})
    public int n;
    @Param({"1024"})
    public int k;

    Mat a;
    Mat b;
    Mat c;

    @Setup
    public void setup() {
        SplittableRandom r = new SplittableRandom(1);
        a = Mat.zeros(m, k);
        b = Mat.zeros(n, k);
        c = Mat.zeros(m, n);
        for (int i = 0; i < a.data().length; i++) {
            a.data()[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < b.data().length; i++) {
            b.data()[i] = (float) r.nextGaussian();
        }
    }

    /** The plain triple loop the kernel is tested against: the baseline of the ratio. */
    @Benchmark
    public float naive() {
        new NaiveGemm().mulT(a, b, c);
        return c.data()[0];
    }

    @Benchmark
    public float linear() {
        VectorGemm.parallel().mulT(a, b, c);
        return c.data()[0];
    }
}
