using System.Net;
using System.Text.Json;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api.Tests.Support;

namespace CrmEngine.Api.Tests.Resources;

[Collection(ResourceApiCollection.Name)]
public sealed class CustomerResourceTests(ResourceApiFixture fixture)
{
    private ApiTestHost Host => fixture.Host;

    [Fact]
    public async Task Create_answers_201_with_location_and_etag_and_ignores_engine_owned_fields()
    {
        var name = Api.Unique("Created");
        using var response = await Api.PostAsync(Host.Writer, "/api/customers",
            $$"""{"id":"chosen-by-client","version":42,"createdAt":"2001-01-01T00:00:00+00:00","name":"{{name}}","kind":"Person","emails":["{{name}}@example.com"]}""");
        var created = await Api.OkJsonAsync(response, HttpStatusCode.Created);

        var id = created.Id();
        Assert.NotEqual("chosen-by-client", id);
        Assert.Equal(1, created.GetProperty("version").GetInt64());
        Assert.NotEqual(2001, created.GetProperty("createdAt").GetDateTimeOffset().Year);
        Assert.Equal("Person", created.Str("kind"));
        Assert.Equal("\"1\"", response.ETag());
        Assert.Equal($"/api/customers/{id}", response.Headers.Location?.ToString());

        using var read = await Host.Reader.GetAsync(response.Headers.Location);
        var body = await Api.OkJsonAsync(read);
        Assert.Equal(name, body.Str("name"));
        Assert.Equal("\"1\"", read.ETag());

        // The write went through the pipeline as the caller: the audit log names the key.
        var audit = await Host.Store().Audit.ForEntityAsync(EntityNames.Customer, id);
        Assert.Equal("apikey:test-write", Assert.Single(audit).Actor);
    }

    [Fact]
    public async Task Get_with_the_current_etag_in_if_none_match_answers_304_and_404_for_an_unknown_id()
    {
        var created = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Cached")}}"}""");
        using var notModified = await Api.SendAsync(Host.Reader, HttpMethod.Get, $"/api/customers/{created.Id()}", ifNoneMatch: "\"1\"");
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Equal("\"1\"", notModified.ETag());

        using var stale = await Api.SendAsync(Host.Reader, HttpMethod.Get, $"/api/customers/{created.Id()}", ifNoneMatch: "\"7\"");
        Assert.Equal(HttpStatusCode.OK, stale.StatusCode);

        using var missing = await Host.Reader.GetAsync("/api/customers/no-such-customer");
        var problem = await ApiTestHost.AssertProblemAsync(missing, 404);
        Assert.Contains("no-such-customer", problem.Str("detail"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Put_needs_if_match_and_refuses_a_stale_version_naming_the_current_one_without_changing_anything()
    {
        var created = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Versioned")}}","owner":"rep-1"}""");
        var url = $"/api/customers/{created.Id()}";

        using var missing = await Api.SendAsync(Host.Writer, HttpMethod.Put, url, """{"name":"No precondition"}""");
        var required = await ApiTestHost.AssertProblemAsync(missing, 428);
        Assert.Contains("If-Match", Api.ErrorFields(required));

        using var any = await Api.SendAsync(Host.Writer, HttpMethod.Put, url, """{"name":"Star"}""", ifMatch: "*");
        await ApiTestHost.AssertProblemAsync(any, 428);

        using var updated = await Api.SendAsync(Host.Writer, HttpMethod.Put, url, """{"name":"Second name","owner":"rep-2"}""", ifMatch: "\"1\"");
        var second = await Api.OkJsonAsync(updated);
        Assert.Equal(2, second.GetProperty("version").GetInt64());
        Assert.Equal("\"2\"", updated.ETag());

        using var stale = await Api.SendAsync(Host.Writer, HttpMethod.Put, url, """{"name":"Lost update"}""", ifMatch: "\"1\"");
        var conflict = await ApiTestHost.AssertProblemAsync(stale, 412);
        Assert.Equal(2, conflict.GetProperty("currentVersion").GetInt64());
        Assert.Equal("\"2\"", stale.ETag());

        using var malformed = await Api.SendAsync(Host.Writer, HttpMethod.Put, url, """{"name":"x"}""", ifMatch: "version-2");
        Assert.Contains("If-Match", Api.ErrorFields(await ApiTestHost.AssertProblemAsync(malformed, 400)));

        var stored = await Host.Store().Customers.GetAsync(created.Id());
        Assert.Equal("Second name", stored!.Name);
        Assert.Equal(2, stored.Version);
    }

    [Fact]
    public async Task Two_clients_replacing_the_same_version_one_wins_and_the_other_gets_412()
    {
        var created = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Contested")}}"}""");
        var url = $"/api/customers/{created.Id()}";
        using var otherWriter = Host.Client(Host.WriteKey);
        var responses = await Task.WhenAll(
            Api.SendAsync(Host.Writer, HttpMethod.Put, url, """{"name":"From A"}""", ifMatch: "\"1\""),
            Api.SendAsync(otherWriter, HttpMethod.Put, url, """{"name":"From B"}""", ifMatch: "\"1\""));
        try
        {
            var codes = responses.Select(r => (int)r.StatusCode).Order().ToList();
            Assert.Equal([200, 412], codes);
            var winner = await ApiTestHost.ReadJsonAsync(responses.Single(r => r.StatusCode == HttpStatusCode.OK));
            var stored = await Host.Store().Customers.GetAsync(created.Id());
            Assert.Equal(winner.Str("name"), stored!.Name);
            Assert.Equal(2, stored.Version);
        }
        finally
        {
            foreach (var response in responses)
            {
                response.Dispose();
            }
        }
    }

    [Fact]
    public async Task Patch_is_a_json_merge_patch_that_changes_only_what_it_names_and_removes_nulls()
    {
        var name = Api.Unique("Patched");
        var created = await Api.CreateCustomerAsync(Host.Writer,
            $$"""{"name":"{{name}}","owner":"rep-1","tags":["a","b"],"profile":{"region":"North","gender":"f"},"creditLimit":500}""");
        var url = $"/api/customers/{created.Id()}";

        using var patched = await Api.SendAsync(Host.Writer, HttpMethod.Patch, url,
            """{"owner":null,"tags":["c"],"profile":{"region":"South"},"version":99}""", ifMatch: "\"1\"", contentType: "application/merge-patch+json");
        var body = await Api.OkJsonAsync(patched);

        Assert.Equal(name, body.Str("name"));
        Assert.Equal(JsonValueKind.Null, body.GetProperty("owner").ValueKind);
        Assert.Equal(["c"], body.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("South", body.GetProperty("profile").Str("region"));
        Assert.Equal("f", body.GetProperty("profile").Str("gender"));
        Assert.Equal(500m, body.GetProperty("creditLimit").GetDecimal());
        Assert.Equal(2, body.GetProperty("version").GetInt64());

        using var noVersion = await Api.SendAsync(Host.Writer, HttpMethod.Patch, url, """{"owner":"x"}""", contentType: "application/merge-patch+json");
        await ApiTestHost.AssertProblemAsync(noVersion, 428);

        using var badPatch = await Api.SendAsync(Host.Writer, HttpMethod.Patch, url, """{"creditLimit":"lots"}""", ifMatch: "\"2\"",
            contentType: "application/merge-patch+json");
        var problem = await ApiTestHost.AssertProblemAsync(badPatch, 400);
        Assert.Equal(["creditLimit"], Api.ErrorFields(problem));

        // null removes the member (RFC 7396): the card is left without its required name.
        using var invalid = await Api.SendAsync(Host.Writer, HttpMethod.Patch, url, """{"name":null}""", ifMatch: "\"2\"",
            contentType: "application/merge-patch+json");
        Assert.Equal(["name"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(invalid, 422)));

        Assert.Equal(2, (await Host.Store().Customers.GetAsync(created.Id()))!.Version);
    }

    [Fact]
    public async Task A_read_body_can_be_sent_back_with_put_but_an_id_that_differs_from_the_url_is_refused()
    {
        var created = await Api.CreateCustomerAsync(Host.Writer,
            JsonSerializer.Serialize(new
            {
                name = Api.Unique("RoundTrip"),
                addresses = new[] { new { kind = "Billing", city = "Lyon" } },
                custom = new { score = new { type = "Number", number = 7 } },
            }));
        var url = $"/api/customers/{created.Id()}";
        using var read = await Host.Reader.GetAsync(url);
        var text = await read.Content.ReadAsStringAsync();

        using var put = await Api.SendAsync(Host.Writer, HttpMethod.Put, url, text, ifMatch: read.ETag());
        var stored = await Api.OkJsonAsync(put);
        Assert.Equal("Lyon", stored.GetProperty("addresses")[0].Str("city"));
        Assert.Equal(7m, stored.GetProperty("custom").GetProperty("score").GetProperty("number").GetDecimal());

        var otherId = text.Replace(created.Id(), "someone-else", StringComparison.Ordinal);
        using var moved = await Api.SendAsync(Host.Writer, HttpMethod.Put, url, otherId, ifMatch: put.ETag());
        Assert.Equal(["id"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(moved, 422)));
    }

    [Fact]
    public async Task Delete_honours_an_if_match_and_works_without_one()
    {
        var first = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Deleted")}}"}""");
        using var stale = await Api.SendAsync(Host.Writer, HttpMethod.Delete, $"/api/customers/{first.Id()}", ifMatch: "\"5\"");
        await ApiTestHost.AssertProblemAsync(stale, 412);
        Assert.NotNull(await Host.Store().Customers.GetAsync(first.Id()));

        using var deleted = await Api.SendAsync(Host.Writer, HttpMethod.Delete, $"/api/customers/{first.Id()}", ifMatch: "\"1\"");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        using var gone = await Host.Reader.GetAsync($"/api/customers/{first.Id()}");
        await ApiTestHost.AssertProblemAsync(gone, 404);

        var second = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Deleted")}}"}""");
        using var unconditional = await Api.SendAsync(Host.Writer, HttpMethod.Delete, $"/api/customers/{second.Id()}");
        Assert.Equal(HttpStatusCode.NoContent, unconditional.StatusCode);
        Assert.Null(await Host.Store().Customers.GetAsync(second.Id()));

        using var again = await Api.SendAsync(Host.Writer, HttpMethod.Delete, $"/api/customers/{second.Id()}");
        await ApiTestHost.AssertProblemAsync(again, 404);
    }

    [Theory]
    [InlineData("""{"name":"X","nickname":"Y"}""", 400, "nickname")]
    [InlineData("""{"name":"X","creditLimit":"100"}""", 400, "creditLimit")]
    [InlineData("""{"name":"X","kind":3}""", 400, "kind")]
    [InlineData("""{"name":"X","kind":"Robot"}""", 400, "kind")]
    [InlineData("""{"name":"X","emails":null}""", 400, "emails")]
    [InlineData("""{"name":"X","profile":{"region":"N","shoeSize":44}}""", 400, "profile.shoeSize")]
    [InlineData("""{"name":"X","emails":["not-an-address"]}""", 422, "emails[0]")]
    [InlineData("""{"name":"X","contacts":[{"name":"","email":"a@b"}]}""", 422, "contacts[0].name")]
    [InlineData("""{"name":"   "}""", 422, "name")]
    [InlineData("""{"name":"X","blacklisted":true}""", 422, "blacklistReason")]
    public async Task Bad_input_is_refused_naming_the_field_and_nothing_is_stored(string json, int status, string field)
    {
        var before = await Host.Store().Changes.LastSequenceAsync();
        using var response = await Api.PostAsync(Host.Writer, "/api/customers", json);
        var problem = await ApiTestHost.AssertProblemAsync(response, status);
        Assert.Contains(field, Api.ErrorFields(problem));
        Assert.Contains(field, problem.Str("detail"), StringComparison.Ordinal);
        Assert.Empty(await Api.ApiChangesSinceAsync(Host, before));
    }

    [Fact]
    public async Task A_body_that_is_not_json_or_not_sent_as_json_is_refused()
    {
        using var notJson = await Api.PostAsync(Host.Writer, "/api/customers", """{"name": "X",""");
        await ApiTestHost.AssertProblemAsync(notJson, 400);

        using var empty = await Api.PostAsync(Host.Writer, "/api/customers", "");
        await ApiTestHost.AssertProblemAsync(empty, 400);

        using var array = await Api.PostAsync(Host.Writer, "/api/customers", "[]");
        await ApiTestHost.AssertProblemAsync(array, 400);

        using var text = await Api.SendAsync(Host.Writer, HttpMethod.Post, "/api/customers", """{"name":"X"}""", contentType: "text/plain");
        await ApiTestHost.AssertProblemAsync(text, 415);
    }

    [Fact]
    public async Task Search_finds_customers_by_each_indexed_field()
    {
        var tag = Api.Unique("tag");
        var owner = Api.Unique("owner");
        var name = Api.Unique("Searchable Name");
        var email = Api.Unique("Search") + "@Example.com";
        var erp = Api.Unique("C");
        var phoneDigits = "+49301" + Random.Shared.Next(1000000, 9999999);
        var match = await Api.CreateCustomerAsync(Host.Writer, JsonSerializer.Serialize(new
        {
            name,
            owner,
            tags = new[] { tag },
            emails = new[] { email },
            phones = new[] { phoneDigits[..3] + " (" + phoneDigits[3..6] + ") " + phoneDigits[6..] },
            externalIds = new Dictionary<string, string> { ["erp"] = erp },
        }));
        await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Other")}}","tags":["{{tag}}-not"]}""");

        var queries = new[]
        {
            $"email={Uri.EscapeDataString(email.ToUpperInvariant())}",
            $"phone={Uri.EscapeDataString(phoneDigits)}",
            $"name={Uri.EscapeDataString(name.ToLowerInvariant())}",
            $"tag={Uri.EscapeDataString(tag)}",
            $"owner={Uri.EscapeDataString(owner)}",
            $"externalId={Uri.EscapeDataString("erp:" + erp)}",
        };
        foreach (var query in queries)
        {
            using var response = await Host.Reader.GetAsync("/api/customers?" + query);
            var page = await Api.OkJsonAsync(response);
            var items = page.GetProperty("items").EnumerateArray().ToList();
            Assert.True(items.Count == 1, $"{query}: {page}");
            Assert.Equal(match.Id(), items[0].Id());
            Assert.Equal(JsonValueKind.Null, page.GetProperty("next").ValueKind);
        }
    }

    [Fact]
    public async Task Name_search_is_a_case_insensitive_prefix_paged_in_name_order()
    {
        var stem = Api.Unique("Präfix");
        var names = new[] { stem + " Gamma", stem.ToUpperInvariant() + " alpha", stem.ToLowerInvariant() + " Beta" };
        var ids = new List<string>();
        foreach (var n in names)
        {
            ids.Add((await Api.CreateCustomerAsync(Host.Writer, JsonSerializer.Serialize(new { name = n }))).Id());
        }

        await Api.CreateCustomerAsync(Host.Writer, JsonSerializer.Serialize(new { name = "Not " + stem }));

        var seen = new List<string>();
        var url = "/api/customers?name=" + Uri.EscapeDataString(stem.ToLowerInvariant()) + "&limit=2";
        for (var pages = 0; url is not null; pages++)
        {
            Assert.True(pages < 5, "the pages do not end");
            var page = await Api.OkJsonAsync(await Host.Reader.GetAsync(url));
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("name").GetString()!));
            url = page.GetProperty("next").ValueKind == JsonValueKind.Null ? null : page.GetProperty("next").GetString();
        }

        // Every match once, in (lower-cased) name order; the one that only contains the stem is not a prefix match.
        Assert.Equal(names.OrderBy(n => n.ToLowerInvariant(), StringComparer.Ordinal), seen);

        var bad = await Host.Reader.GetAsync("/api/customers?name=" + Uri.EscapeDataString(stem) + "&after=not-a-cursor");
        Assert.Equal(["after"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(bad, 400)));
    }

    [Theory]
    [InlineData("emial=a@b.c", "emial")]
    [InlineData("email=a@b.c&tag=x", "tag")]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=501", "limit")]
    [InlineData("limit=ten", "limit")]
    [InlineData("tag=a&tag=b", "tag")]
    [InlineData("after=", "after")]
    public async Task A_bad_search_parameter_is_refused_naming_it(string query, string field)
    {
        using var response = await Host.Reader.GetAsync("/api/customers?" + query);
        var problem = await ApiTestHost.AssertProblemAsync(response, 400);
        Assert.Equal([field], Api.ErrorFields(problem));
    }

    [Fact]
    public async Task Pages_follow_next_links_in_id_order_with_a_link_header()
    {
        var tag = Api.Unique("paged");
        var ids = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            ids.Add((await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"P{{i}}","tags":["{{tag}}"]}""")).Id());
        }

        var seen = new List<string>();
        string? next = $"/api/customers?tag={tag}&limit=3";
        var pages = 0;
        while (next is not null)
        {
            using var response = await Host.Reader.GetAsync(next);
            var page = await Api.OkJsonAsync(response);
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(c => c.Id()));
            next = page.GetProperty("next").GetString();
            if (next is not null)
            {
                Assert.Equal($"<{next}>; rel=\"next\"", string.Join(",", response.Headers.GetValues("Link")));
                Assert.Contains("limit=3", next, StringComparison.Ordinal);
            }

            pages++;
        }

        Assert.Equal(3, pages);
        Assert.Equal(ids.Order(StringComparer.Ordinal), seen);
    }

    [Fact]
    public async Task Paging_through_all_customers_while_others_create_and_update_sees_each_existing_customer_exactly_once()
    {
        for (var i = 0; i < 60; i++)
        {
            await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Existing")}}"}""");
        }

        var existing = new HashSet<string>(StringComparer.Ordinal);
        string? after = null;
        while (true)
        {
            var slice = await Host.Store().Customers.ListAsync(500, after);
            existing.UnionWith(slice.Select(c => c.Id));
            if (slice.Count < 500)
            {
                break;
            }

            after = slice[^1].Id;
        }

        using var stop = new CancellationTokenSource();
        var existingList = existing.ToList();
        var writes = 0;
        var writer = Task.Run(async () =>
        {
            var store = Host.Store("concurrent-writer");
            var random = new Random(17);
            while (!stop.IsCancellationRequested)
            {
                await store.Customers.CreateAsync(new Customer { Name = Api.Unique("Concurrent") });
                var victim = await store.Customers.GetAsync(existingList[random.Next(existingList.Count)]);
                if (victim is not null)
                {
                    victim.Tags.Add("touched");
                    try
                    {
                        await store.Customers.UpdateAsync(victim);
                    }
                    catch (ConcurrencyException)
                    {
                        // Another test changed it meanwhile: the next round picks another.
                    }
                }

                Interlocked.Increment(ref writes);
            }
        });

        var seen = new List<string>();
        string? next = "/api/customers?limit=7";
        try
        {
            while (next is not null)
            {
                using var response = await Host.Reader.GetAsync(next);
                var page = await Api.OkJsonAsync(response);
                seen.AddRange(page.GetProperty("items").EnumerateArray().Select(c => c.Id()));
                next = page.GetProperty("next").GetString();
                // Let the writer get in between pages on a slow machine too.
                var target = Volatile.Read(ref writes) + 1;
                await Eventually.TrueAsync(() => Volatile.Read(ref writes) >= target || writer.IsCompleted, "the concurrent writer made progress");
            }
        }
        finally
        {
            await stop.CancelAsync();
            await writer;
        }

        Assert.True(writes > 0);
        Assert.Equal(seen.Count, seen.Distinct(StringComparer.Ordinal).Count());
        var seenSet = seen.ToHashSet(StringComparer.Ordinal);
        var missed = existing.Where(id => !seenSet.Contains(id)).ToList();
        Assert.True(missed.Count == 0, $"{missed.Count} of {existing.Count} existing customers were skipped: {string.Join(", ", missed.Take(5))}");
        Assert.Equal(seen.Order(StringComparer.Ordinal), seen);
    }

    [Fact]
    public async Task Without_a_key_401_and_with_only_the_read_scope_403_and_nothing_changes()
    {
        var created = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Guarded")}}"}""");
        var url = $"/api/customers/{created.Id()}";
        var before = await Host.Store().Changes.LastSequenceAsync();
        var count = await Host.Store().Customers.CountAsync();

        using var anonymous = await Host.Anonymous.GetAsync(url);
        await ApiTestHost.AssertProblemAsync(anonymous, 401);
        using var anonymousPost = await Api.PostAsync(Host.Anonymous, "/api/customers", """{"name":"Intruder"}""");
        await ApiTestHost.AssertProblemAsync(anonymousPost, 401);

        using var read = await Host.Reader.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        var requests = new (HttpMethod Method, string Url, string? Body)[]
        {
            (HttpMethod.Post, "/api/customers", """{"name":"Reader wrote"}"""),
            (HttpMethod.Put, url, """{"name":"Reader replaced"}"""),
            (HttpMethod.Patch, url, """{"name":"Reader patched"}"""),
            (HttpMethod.Delete, url, null),
        };
        foreach (var (method, target, body) in requests)
        {
            using var response = await Api.SendAsync(Host.Reader, method, target, body, ifMatch: "\"1\"");
            await ApiTestHost.AssertProblemAsync(response, 403);
        }

        Assert.Empty(await Api.ApiChangesSinceAsync(Host, before));
        Assert.Equal(count, await Host.Store().Customers.CountAsync());
        var stored = await Host.Store().Customers.GetAsync(created.Id());
        Assert.Equal(1, stored!.Version);
    }

    [Fact]
    public async Task A_merged_away_id_redirects_reads_and_writes_with_308_but_a_delete_only_names_the_kept_customer()
    {
        var kept = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Kept")}}"}""");
        var removedId = Api.Unique("merged-away");
        fixture.Redirects.Map[removedId] = kept.Id();
        using var client = fixture.NoRedirectClient(Host.WriteKey);

        using var get = await client.GetAsync($"/api/customers/{removedId}");
        Assert.Equal(HttpStatusCode.PermanentRedirect, get.StatusCode);
        Assert.Equal($"/api/customers/{kept.Id()}", get.Headers.Location?.ToString());

        using var contacts = await client.GetAsync($"/api/customers/{removedId}/contacts");
        Assert.Equal(HttpStatusCode.PermanentRedirect, contacts.StatusCode);
        Assert.Equal($"/api/customers/{kept.Id()}/contacts", contacts.Headers.Location?.ToString());

        using var timeline = await client.GetAsync($"/api/customers/{removedId}/timeline?order=due");
        Assert.Equal($"/api/customers/{kept.Id()}/timeline?order=due", timeline.Headers.Location?.ToString());

        using var put = await Api.SendAsync(client, HttpMethod.Put, $"/api/customers/{removedId}", """{"name":"x"}""", ifMatch: "\"1\"");
        Assert.Equal(HttpStatusCode.PermanentRedirect, put.StatusCode);

        using var delete = await Api.SendAsync(client, HttpMethod.Delete, $"/api/customers/{removedId}");
        var problem = await ApiTestHost.AssertProblemAsync(delete, 404);
        Assert.Equal(kept.Id(), problem.Str("mergedInto"));
        Assert.NotNull(await Host.Store().Customers.GetAsync(kept.Id()));

        // A client that follows redirects simply reads the kept customer.
        using var followed = await Host.Reader.GetAsync($"/api/customers/{removedId}");
        Assert.Equal(kept.Id(), (await Api.OkJsonAsync(followed)).Id());
    }
}
