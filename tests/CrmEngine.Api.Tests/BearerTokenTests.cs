using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using CrmEngine.Api.Tests.Support;
using CrmEngine.Security;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CrmEngine.Api.Tests;

/// <summary>
/// Bearer tokens with a JWKS signing key file, the user taken from <c>oid</c> and the scope from <c>scp</c>
/// (<c>Api:Jwt:ScopeClaim</c>): the token's scope narrows the user, a token without a CRM scope may do nothing, a token
/// without the user claim is 403, and a half-configured <c>Api:Jwt</c> stops the start naming the key.
/// </summary>
public sealed class BearerTokenTests
{
    private const string Issuer = "https://idp.test/tenant";
    private const string Audience = "api://crm";

    [Fact]
    public async Task Token_scope_narrows_the_user_and_tokens_without_user_or_crm_scope_are_refused()
    {
        using var rsa = RSA.Create(2048);
        var jwks = Path.Combine(Path.GetTempPath(), "crm-api-tests", Guid.NewGuid().ToString("N") + ".jwks.json");
        Directory.CreateDirectory(Path.GetDirectoryName(jwks)!);
        var p = rsa.ExportParameters(false);
        File.WriteAllText(jwks, new JsonObject
        {
            ["keys"] = new JsonArray(new JsonObject
            {
                ["kty"] = "RSA", ["use"] = "sig", ["alg"] = "RS256", ["kid"] = "k1",
                ["n"] = Base64UrlEncoder.Encode(p.Modulus), ["e"] = Base64UrlEncoder.Encode(p.Exponent),
            }),
        }.ToJsonString());
        try
        {
            await using var api = await ApiTestHost.StartAsync(o =>
            {
                o.Settings["Api:Jwt:Issuer"] = Issuer;
                o.Settings["Api:Jwt:Audience"] = Audience;
                o.Settings["Api:Jwt:SigningKeys:0"] = jwks;
                o.Settings["Api:Jwt:UserClaim"] = "oid";
                o.Settings["Api:Jwt:ScopeClaim"] = "scp";
            });
            var admin = api.GetService<SecurityAdministration>();
            await admin.SeedAsync(SeedFile.Load(ShippedSeed()), "admin");
            await admin.CreateUserAsync(new SecurityUser { Id = "anna", Name = "Anna", BusinessUnit = "sales", Roles = ["salesperson"] }, "admin");
            using var http = new HttpClient { BaseAddress = api.BaseAddress };

            string Token(string? user, string scp)
            {
                var claims = new Dictionary<string, object> { ["scp"] = scp };
                if (user is not null)
                {
                    claims["oid"] = user;
                }

                return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
                {
                    Issuer = Issuer, Audience = Audience, Expires = DateTime.UtcNow.AddMinutes(10), Claims = claims,
                    SigningCredentials = new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = "k1" }, SecurityAlgorithms.RsaSha256),
                });
            }

            async Task<(HttpStatusCode Status, string Body)> Send(HttpMethod method, string path, string token, string? json = null)
            {
                using var request = new HttpRequestMessage(method, path);
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                if (json is not null)
                {
                    request.Content = ApiTestHost.Json(json);
                }

                using var response = await http.SendAsync(request);
                var text = await response.Content.ReadAsStringAsync();
                // Problems answer their detail (JSON escapes quotes), records their JSON.
                return (response.StatusCode, response.Content.Headers.ContentType?.MediaType == "application/problem+json"
                    ? JsonNode.Parse(text)!["detail"]!.GetValue<string>() : text);
            }

            var read = Token("anna", "openid crm.read");
            Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, "api/customers", read)).Status);
            var (status, body) = await Send(HttpMethod.Post, "api/customers", read, """{"name":"Nope GmbH"}""");
            Assert.Equal(HttpStatusCode.Forbidden, status);
            Assert.Equal("this needs the 'write' scope; the token of user 'anna' has 'read'", body);

            (status, body) = await Send(HttpMethod.Post, "api/customers", Token("anna", "crm.read crm.write"), """{"name":"Anna GmbH"}""");
            Assert.True(status == HttpStatusCode.Created, body);
            var audit = await api.Store().Audit.ForEntityAsync("customer", JsonNode.Parse(body)!["id"]!.GetValue<string>());
            Assert.Equal("anna", Assert.Single(audit).Actor);

            (status, body) = await Send(HttpMethod.Get, "api/customers", Token("anna", "openid profile"));
            Assert.Equal(HttpStatusCode.Forbidden, status);
            Assert.Contains("has 'none'", body, StringComparison.Ordinal);

            (status, body) = await Send(HttpMethod.Get, "api/customers", Token(null, "crm.read"));
            Assert.Equal(HttpStatusCode.Forbidden, status);
            Assert.Contains("the bearer token has no 'oid' claim", body, StringComparison.Ordinal);

            // Keys still work beside tokens (the header decides).
            using var byKey = await api.Reader.GetAsync("api/customers");
            Assert.Equal(HttpStatusCode.OK, byKey.StatusCode);
        }
        finally
        {
            File.Delete(jwks);
        }
    }

    [Fact]
    public async Task A_half_configured_jwt_section_stops_the_start_naming_the_key()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using var api = await ApiTestHost.StartAsync(o => o.Settings["Api:Jwt:Issuer"] = Issuer);
        });
        Assert.Contains("Api:Jwt:Audience is required", error.Message, StringComparison.Ordinal);
        Assert.Contains("Api:Jwt needs Authority (OpenID Connect discovery) or SigningKeys", error.Message, StringComparison.Ordinal);
    }

    private static string ShippedSeed()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "security.json")))
        {
            dir = dir.Parent;
        }

        return Path.Combine(dir?.FullName ?? throw new InvalidOperationException("security.json not found"), "security.json");
    }
}
