using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// Event rules are in the pipeline before any plugin starts writing: the stream writer fixture writes customers from
/// the moment its worker starts, and every one of them, the very first included, has passed the pre-stage rule.
/// </summary>
public sealed class EarlyWriteRulesTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_plugin_writing_from_its_first_moment_has_every_write_seen_by_the_event_rules()
    {
        using var root = new TestRoot(s => s["Rules"] = new JsonObject { ["Directory"] = "rules" }, withStreamFixture: true);
        Directory.CreateDirectory(root.File_("rules/segments"));
        Directory.CreateDirectory(root.File_("rules/events"));
        await File.WriteAllTextAsync(root.File_("rules/events/mark-region.js"),
            "// @entity customer\n// @stage pre\n// @order 5\n// @description marks every new customer\nif (!record.salesStatus) {\n  record.salesStatus = 'seen-by-rule';\n}\n");
        var ackFile = root.File_("acked.txt");
        StreamFixture.Configure(root, ackFile, writers: 1);

        using (var crm = CrmProcess.Start(root.Path, output))
        {
            await crm.WaitForReadyAsync();
            await StreamFixture.WaitForAcksAsync(crm, ackFile, 20);
            crm.Signal(CrmProcess.SIGTERM);
            Assert.Equal(0, await crm.WaitForExitAsync(CrmProcess.StartBound));
        }

        var acked = StreamFixture.ReadAcked(ackFile);
        Assert.True(acked.Count >= 20, $"{acked.Count} writes acknowledged");
        var unseen = new List<string>();
        await root.WithStoreAsync(async store =>
        {
            foreach (var id in acked)
            {
                var customer = await store.Customers.GetAsync(id);
                Assert.NotNull(customer);
                if (customer.SalesStatus != "seen-by-rule")
                {
                    unseen.Add($"{id} (#{acked.IndexOf(id) + 1}, salesStatus '{customer.SalesStatus}')");
                }
            }
        });
        Assert.True(unseen.Count == 0, "written before the event rules were registered: " + string.Join(", ", unseen));
    }
}
