using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api.Tests.Support;

namespace CrmEngine.Api.Tests;

/// <summary><c>GET /api/changes</c>: order, paging with <c>next</c>, deletes, long poll, and exactly-once under concurrent writes.</summary>
public sealed class ChangesTests
{
    [Fact]
    public async Task The_feed_pages_in_order_with_deletes_and_the_next_since_value()
    {
        await using var api = await ApiTestHost.StartAsync();
        var store = api.Store("user:test");
        var a = await store.Customers.CreateAsync(new Customer { Name = "A" });
        var b = await store.Customers.CreateAsync(new Customer { Name = "B" });
        await store.Customers.DeleteAsync(a.Id);

        var first = await GetPageAsync(api.Reader, "api/changes?since=0&limit=2");
        Assert.Equal([(a.Id, "Create"), (b.Id, "Create")], first.Changes.Select(c => (c.Id, c.Operation)));
        Assert.True(first.More);
        Assert.Equal(first.Changes[^1].Sequence, first.Next);
        Assert.Equal("user:test", first.Changes[0].Actor);
        Assert.Equal("customer", first.Changes[0].Entity, ignoreCase: true);

        var second = await GetPageAsync(api.Reader, $"api/changes?since={first.Next}&limit=2");
        var delete = Assert.Single(second.Changes);
        Assert.Equal((a.Id, "Delete"), (delete.Id, delete.Operation));
        Assert.False(second.More);

        var empty = await GetPageAsync(api.Reader, $"api/changes?since={second.Next}");
        Assert.Empty(empty.Changes);
        Assert.Equal(second.Next, empty.Next);
        Assert.Equal(second.Next, empty.LastSequence);
    }

    [Theory]
    [InlineData("since=-1", "since")]
    [InlineData("since=abc", "since")]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=100000", "limit")]
    [InlineData("wait=soon", "wait")]
    public async Task Bad_parameters_get_400_naming_the_parameter(string query, string field)
    {
        await using var api = await ApiTestHost.StartAsync();
        var response = await api.Reader.GetAsync("api/changes?" + query);
        var problem = await ApiTestHost.AssertProblemAsync(response, 400);
        Assert.Equal(field, problem.GetProperty("field").GetString());
    }

    [Fact]
    public async Task A_long_poll_returns_as_soon_as_a_change_is_written()
    {
        await using var api = await ApiTestHost.StartAsync();
        var since = await api.Store().Changes.LastSequenceAsync();
        // wait=120: the test would take two minutes if the poll did not end on the write.
        var poll = GetPageAsync(api.Reader, $"api/changes?since={since}&wait=120", api);
        await Task.Yield();
        var created = await api.Store().Customers.CreateAsync(new Customer { Name = "Awaited" });
        var page = await poll.WaitAsync(TimeSpan.FromSeconds(90));
        Assert.Equal(created.Id, Assert.Single(page.Changes).Id);
    }

    [Fact]
    public async Task A_client_that_keeps_the_last_sequence_sees_every_change_exactly_once_in_order_while_writes_run_concurrently()
    {
        await using var api = await ApiTestHost.StartAsync();
        var store = api.Store("user:writer");
        var seen = new List<ChangeDto>();
        using var writing = new CancellationTokenSource();

        // 4 writers create, update and delete customers while the client follows the feed with small pages.
        var ids = new ConcurrentBag<string>();
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 40; i++)
            {
                var c = await store.Customers.CreateAsync(new Customer { Name = $"W{w}-{i}" });
                ids.Add(c.Id);
                if (i % 3 == 0)
                {
                    c.Name += " (renamed)";
                    await store.Customers.UpdateAsync(c);
                }

                if (i % 5 == 0)
                {
                    await store.Customers.DeleteAsync(c.Id);
                }
            }
        })).ToList();

        long since = 0;
        var allWritten = Task.WhenAll(writers);
        while (true)
        {
            var done = allWritten.IsCompleted;
            var page = await GetPageAsync(api.Reader, $"api/changes?since={since}&limit=7&wait=1");
            seen.AddRange(page.Changes);
            since = page.Next;
            if (done && page.Changes.Count == 0)
            {
                break;
            }
        }

        await allWritten;
        var full = await api.Store().Changes.ReadAsync(0, 100_000);
        Assert.Equal(4 * 40 + 4 * 14 + 4 * 8, full.Count);
        Assert.Equal(full.Select(c => (c.Sequence, c.EntityId, c.Operation.ToString())), seen.Select(c => (c.Sequence, c.Id, c.Operation)));
        Assert.Equal(seen.Count, seen.Select(c => c.Sequence).Distinct().Count());
    }

    internal sealed record ChangeDto(long Sequence, string Entity, string Id, string Operation, long Version, DateTimeOffset At, string Actor);

    internal sealed record PageDto(List<ChangeDto> Changes, long Next, long LastSequence, bool More);

    private static async Task<PageDto> GetPageAsync(HttpClient client, string url, ApiTestHost? api = null)
    {
        var response = await client.GetAsync(url);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}\n{api?.Log}");
        return JsonSerializer.Deserialize<PageDto>(text, ApiJson.Options)!;
    }
}
