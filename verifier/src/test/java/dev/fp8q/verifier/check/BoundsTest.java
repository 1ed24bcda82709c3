package dev.fp8q.verifier.check;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.verifier.metrics.ErrorMetrics;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BoundsTest {

    static Bound sqnr(double db) {
        return new Bound(db, null, null, null, null);
    }

    @Test
    void specificSelectorsRefineGeneralOnes() {
        Bounds b = Bounds.defaults().with("linear.ffn", sqnr(40)).with("linear.w8a8.ffn", sqnr(35));
        assertEquals(40.0, b.of("linear", "weight_only", "ffn").minSqnrDb());
        assertEquals(35.0, b.of("linear", "w8a8", "ffn").minSqnrDb());
        assertEquals(22.0, b.of("linear", "w8a8", "attention").minSqnrDb());
    }

    @Test
    void aUserBoundReplacesTheDefaultsUnderIt() {
        Bounds b = Bounds.defaults().with("block_update", sqnr(90));
        assertEquals(90.0, b.of("block_update", "weight_only", null).minSqnrDb());
        assertEquals(90.0, b.of("block_update", "w8a8", null).minSqnrDb());
        assertEquals(20.0, b.of("block_output", "weight_only", null).minSqnrDb());
        // fields the user did not set stay as they were
        assertEquals(0L, Bounds.defaults().with("weight", sqnr(10)).of("weight", null, "ffn").maxCodesFar());
    }

    @Test
    void nanAndInfinityFailEveryLimit() {
        ErrorMetrics nan = new ErrorMetrics(Double.NaN, Double.NaN, Double.NaN, Double.NaN, 4);
        assertEquals(3, new Bound(1.0, 10.0, -1.0, null, null).violations(nan, null, null).size());
        ErrorMetrics exact = ErrorMetrics.of(new float[] {1, 2}, new float[] {1, 2});
        assertEquals(Double.POSITIVE_INFINITY, exact.sqnrDb());
        assertTrue(new Bound(100.0, 0.0, 1.0, null, null).violations(exact, null, null).isEmpty());
        ErrorMetrics bad = ErrorMetrics.of(new float[] {1, 2}, new float[] {1, Float.NaN});
        assertTrue(Double.isNaN(bad.sqnrDb()));
    }

    @Test
    void metricsAreNumericsMdDefinitions() {
        ErrorMetrics m = ErrorMetrics.of(new float[] {3, 4}, new float[] {3, 4.5f});
        assertEquals(0.1, m.relL2(), 1e-12);
        assertEquals(20.0, m.sqnrDb(), 1e-9);
        assertEquals((9 + 18) / (5 * Math.sqrt(9 + 20.25)), m.cosine(), 1e-12);
        assertEquals(0.5, m.maxAbs());
    }

    @Test
    void filesAndSelectorsAreValidated(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("b.json");
        Files.writeString(f, "{\"weight\": {\"max_codes_off_by_one\": 5, \"min_sqnr_db\": 20}}");
        Bound w = Bounds.defaults().withFile(f).of("weight", null, "attention");
        assertEquals(5L, w.maxCodesOffByOne());
        assertEquals(20.0, w.minSqnrDb());
        for (String bad : new String[] {"[]", "{\"weight\": 3}", "{\"nope\": {}}", "{\"weight\": {\"x\": 1}}", "null",
                "{\"weight\": null}", "{\"linear.fast.ffn\": {}}"}) {
            Files.writeString(f, bad);
            assertThrows(Bounds.BoundsException.class, () -> Bounds.defaults().withFile(f), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> Bounds.defaults().with("linear..ffn", sqnr(1)));
        assertNull(Bounds.defaults().of("linear", null, null).minSqnrDb());
    }
}
