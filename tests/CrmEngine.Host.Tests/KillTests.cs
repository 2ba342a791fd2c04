using System.Globalization;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// Acknowledged writes survive SIGKILL: a fixture plugin writes customers in a stream and appends
/// every id whose create returned to a file (flushed); the host is killed at random moments,
/// CRM_KILL_ROUNDS times (default 3), and after each kill the database must open and hold every
/// acknowledged id.
/// </summary>
public sealed class KillTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Every_acknowledged_write_survives_repeated_SIGKILL()
    {
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("CRM_KILL_ROUNDS"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var r) && r > 0 ? r : 3;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        output.WriteLine($"kill rounds {rounds}, seed {seed}");

        using var root = new TestRoot(withStreamFixture: true);
        var ackFile = root.File_("acked.txt");
        PatchStreamFixture(root, ackFile);

        var previouslyAcked = 0;
        for (var round = 1; round <= rounds; round++)
        {
            using (var crm = CrmProcess.Start(root.Path, null))
            {
                await crm.WaitForReadyAsync();
                Assert.Contains(crm.Lines, l => l.Contains("Plugin fixture.stream 1.0.0 Active", StringComparison.Ordinal));

                // A random moment: after a random number of further acknowledged writes, plus a random pause.
                var target = previouslyAcked + random.Next(1, 300);
                var until = DateTime.UtcNow + CrmProcess.StartBound;
                while (ReadAcked(ackFile).Count < target)
                {
                    Assert.True(DateTime.UtcNow < until, "the stream writer stopped acknowledging writes:\n" + crm.Output);
                    Assert.False(crm.Lines.Any(l => l.Contains("Malfunctioned", StringComparison.Ordinal)), crm.Output);
                    await Task.Delay(5);
                }

                await Task.Delay(random.Next(0, 40));
                crm.Signal(CrmProcess.SIGKILL);
                await crm.WaitForExitAsync(TimeSpan.FromSeconds(60));
            }

            var acked = ReadAcked(ackFile);
            previouslyAcked = acked.Count;
            var missing = new List<string>();
            long count = 0;
            await root.WithStoreAsync(async store =>
            {
                foreach (var id in acked)
                {
                    if (await store.Customers.GetAsync(id) is null)
                    {
                        missing.Add(id);
                    }
                }

                count = await store.Customers.CountAsync();
            });

            output.WriteLine($"round {round}: {acked.Count} acknowledged, {count} customers in the database, {missing.Count} missing");
            Assert.True(missing.Count == 0, $"round {round}: acknowledged but missing after SIGKILL: {string.Join(", ", missing.Take(10))}");
            Assert.True(count >= acked.Count);
        }

        Assert.True(previouslyAcked >= rounds, "the stream wrote something in every round");
    }

    private static void PatchStreamFixture(TestRoot root, string ackFile)
    {
        var file = Path.Combine(root.Path, "appsettings.json");
        var settings = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        settings["Plugins"]!["fixture.stream"] = new JsonObject { ["AckFile"] = ackFile, ["DelayMilliseconds"] = 0 };
        // The welcome plugin reacts to every customer too: the kill lands during its async work as well.
        File.WriteAllText(file, settings.ToJsonString());
    }

    /// <summary>Complete lines only: a line cut by the kill was never acknowledged.</summary>
    private static List<string> ReadAcked(string path)
    {
        if (!File.Exists(path))
        {
            return [];
        }

        string text;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
        using (var reader = new StreamReader(stream))
        {
            text = reader.ReadToEnd();
        }

        var parts = text.Split('\n');
        return parts.Take(parts.Length - 1).Where(p => p.Length > 0).ToList();
    }
}
