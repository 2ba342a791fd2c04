using System.Text.Json;
using CrmEngine.Abstractions.Model;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Webhooks.Tests;

public class RestartTests
{
    [Fact]
    public async Task Pending_and_retrying_deliveries_continue_after_a_restart()
    {
        await using var receiver = await Receiver.StartAsync();
        var up = false;
        receiver.Respond = (_, _) => Task.FromResult(Volatile.Read(ref up) ? (200, "ok") : (500, "not yet"));
        var folder = TestEngine.NewFolder();
        var settings = new Dictionary<string, string?>
        {
            ["Webhooks:MaxAttempts"] = "50",
            ["Webhooks:RetryBaseDelay"] = "00:00:00.200",
            ["Webhooks:RetryMaxDelay"] = "00:00:00.500",
        };
        string subscription;
        var ids = new List<string>();
        await using (var engine = await TestEngine.StartAsync(folder, settings))
        {
            (subscription, _) = await engine.SubscribeAsync(receiver.Url(), "customer.*");
            for (var i = 0; i < 4; i++)
            {
                ids.Add((await engine.Store.Customers.CreateAsync(new Customer { Name = "Before restart " + i })).Id);
            }

            await Eventually.WaitAsync(async () => (await engine.DeliveriesAsync(subscription)).Count == 4, "four deliveries stored");
            await Eventually.WaitAsync(() => receiver.Requests.Count >= 2, "the first one has been tried and failed");
            var states = (await engine.DeliveriesAsync(subscription)).Select(d => d.GetProperty("state").GetString()).ToList();
            Assert.DoesNotContain("delivered", states);
        }

        Volatile.Write(ref up, true);
        await using (var engine = await TestEngine.StartAsync(folder, settings))
        {
            await Eventually.WaitAsync(() => receiver.Delivered.Select(r => r.DeliveryId).Distinct().Count() == 4, "all four delivered after the restart");
            Assert.Equal(ids, receiver.Delivered.Select(r => r.Json.GetProperty("entityId").GetString()!).Distinct().ToList());
            await Eventually.WaitAsync(async () => (await engine.DeliveriesAsync(subscription)).All(d => d.GetProperty("state").GetString() == "delivered"),
                "history shows all delivered");
        }
    }

    [Fact]
    public async Task Changes_committed_while_the_dispatcher_was_not_running_are_delivered_with_the_record_as_it_was_then()
    {
        await using var receiver = await Receiver.StartAsync();
        var folder = TestEngine.NewFolder();
        string subscription;
        await using (var engine = await TestEngine.StartAsync(folder))
        {
            (subscription, _) = await engine.SubscribeAsync(receiver.Url(), "customer.*");
        }

        // The engine runs without webhooks: the changes pile up in the change feed only.
        string id;
        await using (var engine = await TestEngine.StartAsync(folder, webhooks: false))
        {
            var c = await engine.Store.Customers.CreateAsync(new Customer { Name = "First name", Tags = ["a", "b"] });
            c.Name = "Second name";
            c.Tags = ["b"];
            c.Addresses = [new Address { City = "Gent" }];
            c = await engine.Store.Customers.UpdateAsync(c);
            c.Name = "Third name";
            c.Addresses = [];
            await engine.Store.Customers.UpdateAsync(c);
            id = c.Id;
        }

        await using (var engine = await TestEngine.StartAsync(folder))
        {
            await Eventually.WaitAsync(() => receiver.Delivered.Count == 3, "three changes delivered after the restart");
            var bodies = receiver.Delivered.Select(r => r.Json).ToList();
            Assert.All(bodies, b => Assert.Equal(id, b.GetProperty("entityId").GetString()));
            Assert.Equal([1L, 2L, 3L], bodies.Select(b => b.GetProperty("version").GetInt64()));

            var first = bodies[0].GetProperty("data");
            Assert.Equal("First name", first.GetProperty("name").GetString());
            Assert.Equal(["a", "b"], first.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
            Assert.Equal(1, first.GetProperty("version").GetInt64());

            var second = bodies[1].GetProperty("data");
            Assert.Equal("Second name", second.GetProperty("name").GetString());
            Assert.Equal(["b"], second.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
            Assert.Equal("Gent", second.GetProperty("addresses")[0].GetProperty("city").GetString());

            var third = bodies[2].GetProperty("data");
            Assert.Equal("Third name", third.GetProperty("name").GetString());
            Assert.Equal(0, third.GetProperty("addresses").GetArrayLength());

            // The engine's own API gives the same record for the last change as the payload did.
            var stored = await engine.Store.Customers.GetAsync(id);
            Assert.Equal(stored!.Version, third.GetProperty("version").GetInt64());
            // In the API's shape: exactly what GET /api/customers/{id} answers (camelCase, every member).
            var api = System.Text.Json.JsonSerializer.SerializeToNode(stored, CrmEngine.Api.ApiJson.Options)!;
            Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(api, System.Text.Json.Nodes.JsonNode.Parse(third.GetRawText())),
                $"payload data differs from the API's shape:\n{third.GetRawText()}\n{api.ToJsonString()}");
        }
    }

    [Fact]
    public async Task The_cursor_is_stored_with_the_deliveries_so_a_restart_neither_skips_nor_repeats_the_fan_out()
    {
        await using var receiver = await Receiver.StartAsync();
        var folder = TestEngine.NewFolder();
        string subscription;
        await using (var engine = await TestEngine.StartAsync(folder))
        {
            (subscription, _) = await engine.SubscribeAsync(receiver.Url(), "*");
            for (var i = 0; i < 5; i++)
            {
                await engine.Store.Customers.CreateAsync(new Customer { Name = "Cursor " + i });
            }

            await Eventually.WaitAsync(() => receiver.Delivered.Count == 5, "five delivered");
        }

        await using (var engine = await TestEngine.StartAsync(folder))
        {
            await engine.Store.Customers.CreateAsync(new Customer { Name = "After" });
            await Eventually.WaitAsync(() => receiver.Delivered.Count == 6, "the sixth delivered");
            var history = await engine.DeliveriesAsync(subscription);
            Assert.Equal(6, history.Count);
            Assert.Equal(6, receiver.Delivered.Select(r => r.DeliveryId).Distinct().Count());
            var lastSequence = await engine.Services.GetRequiredService<CrmEngine.Abstractions.Store.IChangeFeed>().LastSequenceAsync();
            Assert.Equal(lastSequence, engine.Webhooks.ReadCursor());
        }
    }
}
