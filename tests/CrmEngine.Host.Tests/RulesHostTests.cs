using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// Segments and rules through the real <c>crm</c> process: membership from changes, hot reload of a saved script (and
/// refusal of a broken save, the previous version staying active), <c>crm segments list|members|explain|rebuild</c>
/// and <c>crm rules test --sample</c> over the control channel while it runs and on the database when it is stopped.
/// </summary>
public sealed class RulesHostTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task Segments_follow_changes_and_saved_scripts_and_the_verbs_work_running_and_stopped()
    {
        using var root = new TestRoot(s => s["Rules"] = new JsonObject { ["Directory"] = "rules", ["ReloadDebounce"] = "00:00:00.100" });
        Directory.CreateDirectory(root.File_("rules/segments"));
        Directory.CreateDirectory(root.File_("rules/events"));
        var segment = root.File_("rules/segments/initial-a.js");
        await File.WriteAllTextAsync(segment, "// @description names starting with A\nreturn customer.name.startsWith('A');\n");
        var draft = root.File_("draft.js");
        await File.WriteAllTextAsync(draft, "log('looking at', customer.name);\nreturn customer.orderCount === 0;\n");

        string anna, bert;
        using (var crm = CrmProcess.Start(root.Path, output))
        {
            await crm.WaitForReadyAsync();
            anna = await root.CreateCustomerAsync("Anna");
            bert = await root.CreateCustomerAsync("Bert");
            await MembersAreAsync(root, "initial-a", [anna]);

            var (code, text) = await CrmProcess.RunAsync(root.Path, output, "segments", "list");
            Assert.Equal(0, code);
            Assert.Contains("initial-a", text, StringComparison.Ordinal);
            Assert.Contains("1 members", text, StringComparison.Ordinal);
            Assert.Contains("(1 rebuilds)", text, StringComparison.Ordinal); // one rebuild at the first start

            (code, text) = await CrmProcess.RunAsync(root.Path, output, "segments", "explain", "initial-a", bert);
            Assert.Equal(0, code);
            Assert.Contains($"customer {bert} is NOT in segment initial-a", text, StringComparison.Ordinal);
            Assert.Contains("read customer.name = \"Bert\"", text, StringComparison.Ordinal);
            Assert.Contains("returned false", text, StringComparison.Ordinal);

            (code, text) = await CrmProcess.RunAsync(root.Path, output, "rules", "test", "draft.js", "--sample", "2");
            Assert.Equal(0, code);
            Assert.Contains("dry run: nothing was written", text, StringComparison.Ordinal);
            Assert.Contains("log: looking at Anna", text, StringComparison.Ordinal);
            Assert.Contains("log: looking at Bert", text, StringComparison.Ordinal);
            Assert.Contains("2 customer(s), 0 error(s), 2 in the segment", text, StringComparison.Ordinal);
            Assert.Matches(@"used [\d.]+ ms of 500 ms, \d+ of 100000 statements, .* call depth \d+ of 64", text);

            // Hot reload: saving the script swaps it in and rebuilds the segment.
            await File.WriteAllTextAsync(segment, "// @description names starting with B\nreturn customer.name.startsWith('B');\n");
            await MembersAreAsync(root, "initial-a", [bert]);

            // A broken save is refused with file:line:column; the previous version keeps deciding.
            await File.WriteAllTextAsync(segment, "// broken\nreturn customer.name.startsWith(;\n");
            var refused = await EventuallyAsync(async () =>
            {
                var (_, listed) = await ControlTextAsync(root, "segments");
                return listed.Contains("refused", StringComparison.Ordinal) ? listed : null;
            }, "the broken save refused in crm segments list");
            Assert.Contains("initial-a.js:2:", refused, StringComparison.Ordinal);
            var boris = await root.CreateCustomerAsync("Boris");
            await MembersAreAsync(root, "initial-a", [bert, boris]);

            crm.Signal(CrmProcess.SIGTERM);
            Assert.Equal(0, await crm.WaitForExitAsync(Bound));
        }

        // Stopped: the verbs open the database directly; the file on disk is still the broken one, so the last good
        // version is not loaded by a fresh catalogue: list says so, and a repaired file rebuilds to the same members.
        var (stoppedCode, listedStopped) = await CrmProcess.RunAsync(root.Path, output, "segments", "list");
        Assert.Equal(0, stoppedCode);
        Assert.Contains("initial-a.js:2:", listedStopped, StringComparison.Ordinal);
        await File.WriteAllTextAsync(segment, "// @description names starting with B\nreturn customer.name.startsWith('B');\n");
        var (rebuildCode, rebuilt) = await CrmProcess.RunAsync(root.Path, output, "segments", "rebuild", "initial-a");
        Assert.Equal(0, rebuildCode);
        Assert.Contains("3 customers, 2 members (+0 -0), 0 failed", rebuilt, StringComparison.Ordinal);
        var (membersCode, members) = await CrmProcess.RunAsync(root.Path, output, "segments", "members", "initial-a");
        Assert.Equal(0, membersCode);
        Assert.Contains(bert, members, StringComparison.Ordinal);
        Assert.DoesNotContain(anna, members, StringComparison.Ordinal);
    }

    private static async Task MembersAreAsync(TestRoot root, string segment, string[] expected)
    {
        await EventuallyAsync(async () =>
        {
            var (_, text) = await ControlTextAsync(root, $"segments/{segment}/members?limit=100&after=");
            var ids = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]).Order(StringComparer.Ordinal).ToList();
            return ids.SequenceEqual(expected.Order(StringComparer.Ordinal)) ? "ok" : null;
        }, $"members of {segment}: {string.Join(", ", expected)}");
    }

    /// <summary>GET on the control channel (what the verbs use while the engine runs): the verb's text.</summary>
    private static async Task<(bool Ok, string Text)> ControlTextAsync(TestRoot root, string path)
    {
        using var http = root.Control();
        var answer = await http.GetFromJsonAsync<JsonObject>(path);
        return (answer!["ok"]!.GetValue<bool>(), answer["text"]!.GetValue<string>());
    }

    private static async Task<string> EventuallyAsync(Func<Task<string?>> read, string what)
    {
        var until = DateTime.UtcNow + Bound;
        while (true)
        {
            if (await read() is { } value)
            {
                return value;
            }

            Assert.True(DateTime.UtcNow < until, "timed out waiting for " + what);
            await Task.Delay(200);
        }
    }
}
