package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.testdata.WanCheckpoints;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.yaml.snakeyaml.Yaml;

/**
 * The CI recipes of docs/ci parse as YAML, and every fp8q command in them runs (in-process, on the embedded
 * checkpoint, outputs in a temporary folder) with the exit codes the jobs rely on: 0 for a good conversion, 1
 * once the FP8 weights are damaged, with the report steps still running after a failure.
 */
class CiRecipeTest {

    private static final Path CI = Path.of(System.getProperty("fp8q.repo.dir", "..")).resolve("docs/ci");

    @Test
    @SuppressWarnings("unchecked")
    void githubWorkflowCommandsRunAndFailOnExit1(@TempDir Path dir) throws Exception {
        Map<String, Object> wf = load("github-fp8q.yml");
        Map<String, Object> job = (Map<String, Object>) ((Map<String, Object>) wf.get("jobs")).get("fp8");
        Map<String, String> vars = strings(wf.get("env"));
        List<List<String>> commands = new ArrayList<>();
        for (Map<String, Object> step : (List<Map<String, Object>>) job.get("steps")) {
            String name = String.valueOf(step.get("name"));
            if (name.startsWith("Verify")) {
                assertFalse(step.containsKey("continue-on-error"), "verify's exit code must fail the job");
            }
            if (name.startsWith("Publish") || name.startsWith("Comment")) {
                assertTrue(String.valueOf(step.get("if")).startsWith("always()"), name + " must run after a failed verify");
            }
            if (step.get("run") instanceof String run) {
                commands.addAll(fp8qCommands(run, withTemp(vars, dir)));
            }
        }
        runRecipe(commands, dir);
    }

    @Test
    @SuppressWarnings("unchecked")
    void gitlabJobCommandsRunAndFailOnExit1(@TempDir Path dir) throws Exception {
        Map<String, Object> job = (Map<String, Object>) load("gitlab-fp8q.yml").get("fp8q");
        Map<String, String> vars = strings(job.get("variables"));
        Map<String, Object> artifacts = (Map<String, Object>) job.get("artifacts");
        assertEquals("always", artifacts.get("when"), "the JUnit report must be kept after a failed verify");
        assertEquals(vars.get("JUNIT"), ((Map<String, Object>) artifacts.get("reports")).get("junit"));
        assertTrue(String.join("\n", (List<String>) job.get("after_script")).contains("/notes"), "the MR comment");
        List<List<String>> commands = new ArrayList<>();
        for (String part : List.of("before_script", "script")) {
            for (Object item : (List<Object>) job.get(part)) {
                assertTrue(item instanceof String, part + ": a YAML mapping, not a command (quote it): " + item);
                commands.addAll(fp8qCommands((String) item, withTemp(vars, dir)));
            }
        }
        runRecipe(commands, dir);
    }

    /** Runs convert then verify as the recipe gives them; then damages DST and expects verify to exit 1. */
    private static void runRecipe(List<List<String>> commands, Path dir) throws Exception {
        assertEquals(List.of("convert", "verify"), commands.stream().map(c -> c.get(1)).toList());
        WanCheckpoints.extractEmbedded(dir.resolve("src.safetensors"));
        for (List<String> command : commands) {
            assertEquals(0, run(command), String.join(" ", command));
        }
        List<String> verify = commands.get(1);
        assertTrue(verify.contains("--junit") && verify.contains("--markdown"), verify.toString());
        assertFalse(Files.readString(dir.resolve("fp8q-junit.xml")).contains("<failure"));
        assertTrue(Files.readString(dir.resolve("fp8q-report.md")).contains("PASS"));

        Path dst = dir.resolve("finetune-fp8.safetensors");
        long pos = VerifyCommandTest.offset(dst, "blocks.0.self_attn.k.weight") + 777;
        byte[] b = new byte[3];
        try (var raf = new java.io.RandomAccessFile(dst.toFile(), "r")) {
            raf.seek(pos);
            raf.readFully(b);
        }
        VerifyCommandTest.overwrite(dst, pos, new byte[] {(byte) (b[0] ^ 0x40), (byte) (b[1] ^ 0x40), (byte) (b[2] ^ 0x40)});
        assertEquals(ExitCodes.FAILED_CHECK, run(verify));
        assertTrue(Files.readString(dir.resolve("fp8q-junit.xml")).contains("<failure"));
        assertTrue(Files.readString(dir.resolve("fp8q-report.md")).contains("FAIL"));
    }

    private static int run(List<String> command) {
        StringWriter sink = new StringWriter();
        return Fp8q.run(command.subList(1, command.size()).toArray(String[]::new), new PrintWriter(sink), new PrintWriter(sink));
    }

    /** The recipe's variables with its checkpoint and outputs moved into dir (the names stay the recipe's). */
    private static Map<String, String> withTemp(Map<String, String> vars, Path dir) {
        Map<String, String> v = new HashMap<>(vars);
        v.put("SRC", dir.resolve("src.safetensors").toString());
        for (String out : List.of("DST", "JUNIT", "REPORT")) {
            assertNotNull(vars.get(out), out);
            v.put(out, dir.resolve(vars.get(out)).toString());
        }
        return v;
    }

    private static List<List<String>> fp8qCommands(String script, Map<String, String> vars) {
        List<List<String>> found = new ArrayList<>();
        for (String line : ShellWords.lines(script)) {
            if (line.strip().startsWith("fp8q ")) {
                found.add(ShellWords.split(line, vars));
            }
        }
        return found;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, String> strings(Object map) {
        Map<String, String> out = new HashMap<>();
        ((Map<String, Object>) map).forEach((k, v) -> out.put(k, String.valueOf(v)));
        return out;
    }

    private static Map<String, Object> load(String file) throws IOException {
        try (var in = Files.newBufferedReader(CI.resolve(file))) {
            return new Yaml().load(in);
        }
    }
}
