using System.Diagnostics;

namespace CrmEngine.Scheduling.Tests.Jobs;

/// <summary>
/// A real engine process (the kill harness: AddCrmCore + AddCrmScheduling on real time) is SIGKILLed
/// repeatedly while jobs are due; after the last restart every job has run, and an occurrence ran a
/// second time only when a kill came between its first run and the recording of its end.
/// </summary>
public class KillTests
{
    [Fact]
    public async Task Jobs_due_while_the_process_is_killed_all_run_and_no_occurrence_runs_twice_without_an_interrupted_run()
    {
        var folder = Path.Combine(Path.GetTempPath(), "crm-scheduling-kill", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var journal = Path.Combine(folder, "journal.txt");
        try
        {
            using (var seed = Start(folder, journal, "seed"))
            {
                await WaitForReadyAsync(seed);
                await Task.Delay(1200);
                seed.Kill();
                await seed.WaitForExitAsync();
            }

            for (var i = 0; i < 3; i++)
            {
                using var run = Start(folder, journal, "run");
                await WaitForReadyAsync(run);
                await Task.Delay(700 + (i * 300));
                run.Kill();   // SIGKILL on Unix
                await run.WaitForExitAsync();
            }

            using (var last = Start(folder, journal, "run"))
            {
                await WaitForReadyAsync(last);
                var deadline = DateTime.UtcNow.AddSeconds(60);
                while (DateTime.UtcNow < deadline && CompletedOnce(journal) < 40)
                {
                    await Task.Delay(200);
                }

                await Task.Delay(1500);   // a few cron seconds more
                last.Kill();
                await last.WaitForExitAsync();
            }

            var lines = File.ReadAllLines(journal);
            Assert.Equal(40, CompletedOnce(journal));
            Assert.Equal(5, lines.Count(l => l.StartsWith("boot ", StringComparison.Ordinal)));
            Assert.True(lines.Count(l => l.StartsWith("start ", StringComparison.Ordinal) && l.EndsWith(" cron", StringComparison.Ordinal)) >= 3,
                "the cron job ran in several process lives");

            // For every occurrence: a second start is only allowed after a boot (a kill interrupted the earlier run).
            var lastStart = new Dictionary<string, int>(StringComparer.Ordinal);
            var lastBoot = -1;
            for (var n = 0; n < lines.Length; n++)
            {
                var parts = lines[n].Split(' ');
                if (parts[0] == "boot")
                {
                    lastBoot = n;
                }
                else if (parts[0] == "start")
                {
                    if (lastStart.TryGetValue(parts[1], out var previous))
                    {
                        Assert.True(previous < lastBoot, $"occurrence {parts[1]} started again at line {n + 1} without a restart since line {previous + 1}");
                    }

                    lastStart[parts[1]] = n;
                }
            }
        }
        finally
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>One-shot occurrences that have an "end" line.</summary>
    private static int CompletedOnce(string journal)
    {
        if (!File.Exists(journal))
        {
            return 0;
        }

        var lines = File.ReadAllLines(journal);
        var onceKeys = lines.Where(l => l.StartsWith("start ", StringComparison.Ordinal) && l.EndsWith(" once", StringComparison.Ordinal))
            .Select(l => l.Split(' ')[1]).ToHashSet(StringComparer.Ordinal);
        return lines.Where(l => l.StartsWith("end ", StringComparison.Ordinal)).Select(l => l.Split(' ')[1])
            .Where(onceKeys.Contains).Distinct(StringComparer.Ordinal).Count();
    }

    private static Process Start(string folder, string journal, string mode)
    {
        var harness = HarnessPath();
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(harness);
        info.ArgumentList.Add(folder);
        info.ArgumentList.Add(journal);
        info.ArgumentList.Add(mode);
        return Process.Start(info) ?? throw new InvalidOperationException("the harness did not start");
    }

    private static async Task WaitForReadyAsync(Process process)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            var line = await process.StandardOutput.ReadLineAsync(cts.Token);
            if (line is null)
            {
                var error = await process.StandardError.ReadToEndAsync(cts.Token);
                throw new InvalidOperationException("the harness exited before it was ready: " + error);
            }

            if (line == "ready")
            {
                return;
            }
        }
    }

    private static string HarnessPath()
    {
        // tests/CrmEngine.Scheduling.Tests/bin/<configuration>/<tfm>/ -> KillHarness/bin/<configuration>/<tfm>/
        var dir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = dir.Name;
        var configuration = dir.Parent!.Name;
        var project = dir.Parent.Parent!.Parent!.FullName;
        var path = Path.Combine(project, "KillHarness", "bin", configuration, tfm, "CrmEngine.Scheduling.KillHarness.dll");
        return File.Exists(path) ? path : throw new FileNotFoundException("the kill harness was not built", path);
    }
}
