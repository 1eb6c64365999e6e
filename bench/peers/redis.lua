-- The usual flash-sale stack on Redis: one Lua script, atomic on the single Redis thread:
-- check and decrement the stock, enforce the per-buyer limit, move the money, record the order
-- and its ledger entries. Durability is the AOF's (appendfsync always or everysec).
-- ARGV: buyer, sku, qty. Returns the order id, -1 sold out, -2 over the limit, -3 short of money.
local buyer, sku, qty = ARGV[1], ARGV[2], tonumber(ARGV[3])
local s = redis.call('HMGET', 'sku:' .. sku, 'stock', 'price', 'merchant', 'flash_price', 'limit')
local stock = tonumber(s[1])
if stock == nil then
  return redis.error_reply('not_found')
end
if stock < qty then
  return -1
end
local price = tonumber(s[4] or s[2])
if s[5] then
  local taken = tonumber(redis.call('HGET', 'taken:' .. sku, buyer) or '0')
  if taken + qty > tonumber(s[5]) then
    return -2
  end
end
local total = price * qty
local commission = math.floor(total * 200 / 10000)
local balance = tonumber(redis.call('HGET', 'balances', 'buyer:' .. buyer) or '0')
if balance < total then
  return -3
end
if s[5] then
  redis.call('HINCRBY', 'taken:' .. sku, buyer, qty)
end
redis.call('HINCRBY', 'sku:' .. sku, 'stock', -qty)
redis.call('HINCRBY', 'sku:' .. sku, 'sold', qty)
redis.call('HINCRBY', 'balances', 'buyer:' .. buyer, -total)
redis.call('HINCRBY', 'balances', 'merchant:' .. s[3], total - commission)
redis.call('HINCRBY', 'balances', 'platform', commission)
local id = redis.call('INCR', 'order_seq')
redis.call('HSET', 'order:' .. id, 'buyer', buyer, 'sku', sku, 'qty', qty, 'total', total, 'status', 'paid')
redis.call('RPUSH', 'ledger',
  id .. ' buyer:' .. buyer .. ' merchant:' .. s[3] .. ' ' .. (total - commission),
  id .. ' buyer:' .. buyer .. ' platform ' .. commission)
return id
